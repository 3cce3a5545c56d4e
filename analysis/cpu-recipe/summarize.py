"""Tables from the JSON lines measure.py wrote: curves.csv, runs.csv, summary.json, printed markdown."""

from __future__ import annotations

import csv
import itertools
import json
import statistics
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
PRESETS = ["bert-base", "addbert", "hbert-v1", "hbert-v2"]


def rows(name: str) -> list[dict]:
    path = HERE / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def main() -> None:
    runs = rows("phase_a.jsonl") + rows("wsd.jsonl")
    with (HERE / "runs.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tag", "preset", "seed", "schedule", "lr", "warmup", "decay_frac", "steps", "batch_size",
                    "mask_rate", "mlm_accuracy_128", "mlm_loss_128", "mlm_accuracy_1024", "mlm_loss_1024",
                    "train_seconds", "step_seconds", "eval_seconds"])
        for r in runs:
            w.writerow([r["tag"], r["preset"], r["seed"], r["schedule"], r["lr"], r["warmup"], r["decay_frac"],
                        r["steps"], r["batch_size"], r["mask_rate"], f"{r['mlm_accuracy']:.4f}", f"{r['mlm_loss']:.4f}",
                        f"{r['mlm_accuracy_big']:.4f}", f"{r['mlm_loss_big']:.4f}", f"{r['train_seconds']:.1f}",
                        f"{r['step_seconds']:.4f}", f"{r['eval_seconds']:.1f}"])
    with (HERE / "curves.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tag", "preset", "seed", "schedule", "lr", "steps_total", "step", "lr_at_step", "mlm_accuracy_128",
                    "mlm_loss_128", "train_loss_last50", "train_seconds"])
        for r in runs:
            for c in r["curve"]:
                w.writerow([r["tag"], r["preset"], r["seed"], r["schedule"], r["lr"], r["steps"], c["step"],
                            f"{c['lr']:.3g}", f"{c['mlm_accuracy']:.4f}", f"{c['mlm_loss']:.4f}",
                            f"{c['train_loss_last50']:.4f}", f"{c['train_seconds']:.1f}"])

    # phase (a) curves as a markdown table
    a = [r for r in runs if r["tag"] == "a-constant"]
    if a:
        steps = [c["step"] for c in a[0]["curve"]]
        print("| preset | " + " | ".join(str(s) for s in steps) + " | s/step |")
        print("|---|" + "---|" * (len(steps) + 1))
        for r in a:
            print(f"| {r['preset']} | " + " | ".join(f"{c['mlm_accuracy']:.3f}" for c in r["curve"])
                  + f" | {r['step_seconds']:.3f} |")
        print()

    # WSD groups: (steps, lr, tag-independent) -> preset -> seed -> row
    groups: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in runs:
        if r["schedule"] == "wsd":
            key = (r["steps"], r["lr"], r["warmup"], r["batch_size"], r["mask_rate"])
            groups[key][r["preset"]][r["seed"]] = r
    summary = []
    for key, by_preset in sorted(groups.items()):
        steps, lr, warmup, bs, mask = key
        print(f"### WSD N={steps} lr={lr} warmup={warmup} batch={bs} mask={mask}")
        print("| preset | seeds | MLM acc (128 blocks) mean ± std | per seed | MLM acc (1024 blocks) mean ± std "
              "| per seed | held-out loss (1024) | s/step | train s |")
        print("|---|---|---|---|---|---|---|---|---|")
        entry = {"steps": steps, "lr": lr, "warmup": warmup, "batch_size": bs, "mask_rate": mask, "presets": {}}
        for preset in PRESETS:
            seeds = by_preset.get(preset, {})
            if not seeds:
                continue
            acc = [seeds[s]["mlm_accuracy"] for s in sorted(seeds)]
            big = [seeds[s]["mlm_accuracy_big"] for s in sorted(seeds)]
            loss = [seeds[s]["mlm_loss_big"] for s in sorted(seeds)]
            sps = [seeds[s]["step_seconds"] for s in sorted(seeds)]
            tr = [seeds[s]["train_seconds"] for s in sorted(seeds)]
            sd = (lambda v: statistics.stdev(v) if len(v) > 1 else float("nan"))
            entry["presets"][preset] = {"seeds": sorted(seeds), "acc128": acc, "acc1024": big, "loss1024": loss,
                                        "step_seconds": sps, "train_seconds": tr}
            print(f"| {preset} | {len(acc)} | {statistics.mean(acc):.4f} ± {sd(acc):.4f} | "
                  + ", ".join(f"{x:.4f}" for x in acc)
                  + f" | {statistics.mean(big):.4f} ± {sd(big):.4f} | " + ", ".join(f"{x:.4f}" for x in big)
                  + f" | {statistics.mean(loss):.3f} | {statistics.mean(sps):.3f} | {statistics.mean(tr):.0f} |")
        # order per seed, for seeds that have all four presets
        common = set.intersection(*(set(by_preset.get(p, {})) for p in PRESETS)) if all(
            p in by_preset for p in PRESETS) else set()
        orders = {}
        for metric in ("mlm_accuracy", "mlm_accuracy_big"):
            per_seed = {}
            for s in sorted(common):
                ranked = sorted(PRESETS, key=lambda p: -by_preset[p][s][metric])
                per_seed[s] = ranked
            if per_seed:
                print(f"\norder by {metric} per seed:")
                for s, ranked in per_seed.items():
                    print(f"  seed {s}: " + " > ".join(ranked))
                pairs = {}
                for p, q in itertools.combinations(PRESETS, 2):
                    wins = sum(by_preset[p][s][metric] > by_preset[q][s][metric] for s in per_seed)
                    pairs[f"{p} > {q}"] = f"{wins}/{len(per_seed)}"
                print("  pairwise: " + "; ".join(f"{k} {v}" for k, v in pairs.items()))
                same = len({tuple(v) for v in per_seed.values()}) == 1
                print(f"  identical full order over all seeds: {same}")
                orders[metric] = {"per_seed": per_seed, "pairwise": pairs, "identical": same}
        entry["orders"] = orders
        summary.append(entry)
        print()
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
