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
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.bench.models import BenchError, parse_ints, parse_layouts
    from hsearch.bench.report import format_table, write_report

    def say(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

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
