"""``hsearch bench latency|train``: latency and training throughput against transformers BERT."""

from __future__ import annotations

import sys

from hsearch.cli.common import add_set_flag, parse_sets


def add(sub) -> None:
    p = sub.add_parser("bench", help="measure inference latency / training throughput vs Hugging Face BERT")
    bsub = p.add_subparsers(dest="bench_command", required=True, metavar="WHAT")

    lat = bsub.add_parser("latency", help="forward latency per layout and length vs transformers.BertModel")
    lat.add_argument("--layouts", default="bert-base,addbert,hbert-v1,hbert-v2",
                     help="comma-separated presets or layout strings (default: %(default)s)")
    lat.add_argument("--seq-lens", default="128,211,512,1024,2048", help="comma-separated lengths (default: %(default)s)")
    lat.add_argument("--batch", type=int, default=1)
    lat.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    lat.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    lat.add_argument("--dims", default="base", choices=("base", "small"))
    lat.add_argument("--path", default="auto",
                     help="inference path for the layouts: auto, fp32-eager, bf16-eager, fp16-eager, "
                          "fp32-compile, bf16-compile, int8-dynamic (the reference is always fp32 eager)")
    lat.add_argument("--compile", action="store_true", default=None,
                     help="let `auto` try torch.compile on the CPU too (slow to compile)")
    lat.add_argument("--warmup", type=int, default=2)
    lat.add_argument("--runs", type=int, default=10, help="timed runs per model and length, at most")
    lat.add_argument("--seconds-per-length", type=float, default=60.0,
                     help="fewer runs (>=3) at long lengths so each length takes about this long")
    lat.add_argument("--out", default=None, help="write FILE.md or FILE.json (with the hardware)")

    tr = bsub.add_parser("train", help="MLM training tokens/s, step time, memory, MFU vs BertForMaskedLM")
    tr.add_argument("--layouts", default="bert-base,addbert,hbert-v1,hbert-v2")
    tr.add_argument("--seq-len", type=int, default=128)
    tr.add_argument("--batch", type=int, default=None, help="default: 32 on CUDA, 4 on the CPU")
    tr.add_argument("--steps", type=int, default=20)
    tr.add_argument("--warmup-steps", type=int, default=3)
    tr.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    tr.add_argument("--compile", action="store_true")
    tr.add_argument("--device", default=None, choices=("cpu", "cuda"), help="default: cuda if available")
    tr.add_argument("--dims", default="base", choices=("base", "small"))
    tr.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip transformers.BertForMaskedLM")
    tr.add_argument("--out", default=None, help="write FILE.md or FILE.json (with the hardware)")

    co = bsub.add_parser("cost", help="cost-model accuracy: predicted vs measured step time and latency of whole models")
    co.add_argument("--recipe", default="cpu-small", help="trial recipe (default: %(default)s)")
    add_set_flag(co)
    co.add_argument("--layouts", default=None,
                    help="comma-separated presets or layout strings (default: the 4 presets and 6 mixed layouts)")
    co.add_argument("--data-dir", default=None, help="offline data folder (the tokenizer comes from the corpus)")
    co.add_argument("--device", default=None, choices=("cpu", "cuda"), help="default: cuda if available")
    co.add_argument("--step-runs", type=int, default=None, help="timed training steps per model (default 15)")
    co.add_argument("--max-params-at-once", type=int, default=None,
                    help="models timed round-robin together hold at most this many parameters (memory)")
    co.add_argument("--out", default=None, help="write FILE.md or FILE.json (with the hardware)")

    rec = bsub.add_parser("record", help="replay benchmark: train layouts to the top rung, recording every rung")
    rec.add_argument("--recipe", default="cpu-small", help="a multi-fidelity trial recipe (default: %(default)s)")
    add_set_flag(rec)
    rec.add_argument("--space", default="hbert", help="search space whose seeds and random layouts are recorded")
    rec.add_argument("--layouts", type=int, default=48, help="how many layouts (default: %(default)s)")
    rec.add_argument("--seed", type=int, default=0, help="seed of the random layouts (default: %(default)s)")
    rec.add_argument("--data-dir", default=None, help="offline data folder")
    rec.add_argument("--out", required=True, help="JSON-lines file; layouts already in it are skipped")
    rec.add_argument("--shard", default="0/1", metavar="I/N",
                     help="record only every N-th layout from the I-th (run N processes on one table)")

    rep = bsub.add_parser("replay", help="replay benchmark: compare search strategies on a recorded table")
    rep.add_argument("--table", required=True, help="the file `hsearch bench record` wrote")
    rep.add_argument("--recipe", default="cpu-small", help="the recipe it was recorded with (its rungs)")
    add_set_flag(rep)
    rep.add_argument("--space", default="hbert")
    rep.add_argument("--seeds", type=int, default=20, help="search seeds per strategy (default: %(default)s)")
    rep.add_argument("--workers", type=int, default=2, help="simulated trial slots (default: %(default)s)")
    rep.add_argument("--full-trials", type=float, default=16,
                     help="compute budget, in mean full-fidelity trials of the table (default: %(default)s)")
    rep.add_argument("--out", required=True, help="folder for replay.md, replay.json, replay.png")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.bench.models import BenchError, parse_ints, parse_layouts
    from hsearch.bench.report import format_table, write_report

    def say(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    if args.bench_command in ("record", "replay"):
        return _replay(args, say)
    if args.out and not args.out.endswith((".md", ".json")):
        raise BenchError(f"--out {args.out!r}: unknown report format (allowed: .md, .json)")
    if args.bench_command == "cost":
        from hsearch.bench.cost import bench_cost

        layouts = [t.strip() for t in args.layouts.split(",") if t.strip()] if args.layouts else None
        report = bench_cost(args.recipe, parse_sets(args.overrides), layouts, data_dir=args.data_dir,
                            device=args.device, step_runs=args.step_runs,
                            max_params_at_once=args.max_params_at_once, progress=say)
        print(format_table(report))
        if args.out:
            print(f"wrote {write_report(report, args.out)}")
        return 0
    layouts = parse_layouts(args.layouts)
    if args.bench_command == "latency":
        from hsearch.bench.latency import bench_latency
        from hsearch.model.inference import PATHS, InferencePathError

        if args.path not in ("auto", *PATHS):
            raise InferencePathError(f"--path {args.path!r} (allowed: auto, {', '.join(PATHS)})")

        for flag, value in (("--batch", args.batch), ("--runs", args.runs), ("--threads", args.threads or 1)):
            if value < 1:
                raise BenchError(f"{flag} {value}: must be a positive integer")
        report = bench_latency(
            layouts, parse_ints(args.seq_lens, "--seq-lens"), batch=args.batch, threads=args.threads,
            device=args.device, dims=args.dims, warmup=args.warmup, runs=args.runs, path=args.path,
            compile=args.compile, seconds_per_length=args.seconds_per_length, progress=say,
        )
    else:
        from hsearch.bench.train import bench_train

        if args.batch is not None and args.batch < 1:
            raise BenchError(f"--batch {args.batch}: must be a positive integer")
        report = bench_train(
            layouts, seq_len=args.seq_len, batch=args.batch, steps=args.steps, warmup_steps=args.warmup_steps,
            precision=args.precision, compile=args.compile, device=args.device, dims=args.dims,
            reference=args.reference, progress=say,
        )
    print(format_table(report))
    if args.out:
        print(f"wrote {write_report(report, args.out)}")
    return 0


def _replay(args, say) -> int:
    from pathlib import Path

    from hsearch.bench import replay
    from hsearch.errors import HsearchError
    from hsearch.search.space import load_space
    from hsearch.trial import load_recipe

    recipe = load_recipe(args.recipe, parse_sets(args.overrides) or None)
    space = load_space(args.space)
    if not recipe.fidelity.multi:
        raise HsearchError(f"--recipe {args.recipe}: has one rung; the replay benchmark needs fidelity.rungs")
    if args.bench_command == "record":
        try:
            shard = tuple(int(x) for x in args.shard.split("/"))
            if len(shard) != 2 or not 0 <= shard[0] < shard[1]:
                raise ValueError
        except ValueError:
            raise HsearchError(f"--shard {args.shard!r}: expected I/N with 0 <= I < N, e.g. 0/2") from None
        n = replay.record(recipe, space, Path(args.out), count=args.layouts, seed=args.seed, data_dir=args.data_dir,
                          shard=shard, say=say)
        print(f"{args.out}: {n} layout(s) recorded")
        return 0
    if not Path(args.table).is_file():
        raise HsearchError(f"--table {args.table}: file not found (record one with hsearch bench record)")
    if args.seeds < 1 or args.workers < 1 or not args.full_trials > 0:
        raise HsearchError("--seeds, --workers and --full-trials must be positive")
    table = replay.load_table(Path(args.table), recipe)
    if len(table.curves) < 3:
        raise HsearchError(f"--table {args.table}: {len(table.curves)} complete layout(s); the replay needs 3 or more")
    budget = args.full_trials * replay.full_trial_seconds(table)
    cmp = replay.compare(table, space, budget=budget, seeds=args.seeds, workers=args.workers)
    print(replay.write_report(cmp, table, Path(args.out), args.table).read_text())
    return 0
