"""`hsearch export`: chosen trials as Hugging Face folders, plus seed entries for a space file.

One trial (``--trial N`` / ``--best-under-latency MS``): ``DIR`` itself is the model folder.
Several (``--pareto``): ``DIR/trial-<N>/`` per front trial. Either way ``DIR/seeds.yaml``
lists the layouts under ``seeds:`` (the key a search space file uses) and
``DIR/export.json`` records what was exported from where.

A folder holds weights only when the trial kept its checkpoint (``checkpoint_dir`` attr, or
``<artifacts>/<study>/trial-<N>/checkpoint``); the weights are re-saved through
``save_pretrained`` so they are safetensors and the config is the model's own.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from hsearch.analysis.folders import check_target, staged_folder, write_marker
from hsearch.analysis.pareto import pareto
from hsearch.analysis.study import Objective, TrialRecord, load_study, objectives, records, study_info
from hsearch import defaults
from hsearch.errors import HsearchError
from hsearch.layout import Layout
from hsearch.search.artifacts import fetch_folder

MARKER = "export.json"


@dataclass
class Exported:
    trial: int
    layout: str
    folder: Path
    weights: bool


def choose(study, *, trial: int | None = None, front: bool = False, max_latency_ms: float | None = None
           ) -> list[TrialRecord]:
    """The trials one of the three selectors names; refuses missing or incomplete ones."""
    if sum(x is not None and x is not False for x in (trial, front or None, max_latency_ms)) != 1:
        raise HsearchError("export: give exactly one of --trial N, --pareto, --best-under-latency MS")
    recs = records(study)
    objs = objectives(study)
    if trial is not None:
        by_number = {r.number: r for r in recs}
        if trial not in by_number:
            top = max(by_number) if by_number else None
            allowed = f"0..{top}" if top is not None else "none: the study has no trials"
            raise HsearchError(f"--trial {trial}: no such trial in study {study.study_name} (trials: {allowed})")
        rec = by_number[trial]
        if not rec.complete:
            raise HsearchError(
                f"--trial {trial}: trial is {rec.state.lower()}, not complete "
                f"({rec.attrs.get('reason') or rec.attrs.get('error') or 'no objective values'}); only complete trials export"
            )
        return [rec]
    if front:
        chosen = pareto(study).front
        if not chosen:
            raise HsearchError(f"--pareto: study {study.study_name} has no complete trials")
        return chosen
    lat = _latency_index(objs)
    score = 1 - lat
    fits = [r for r in recs if r.complete and r.values[lat] <= max_latency_ms]
    if not fits:
        done = [r.values[lat] for r in recs if r.complete]
        fastest = f"the fastest complete trial takes {min(done):.3f} ms" if done else "no trial is complete"
        raise HsearchError(f"--best-under-latency {max_latency_ms:g}: no complete trial fits ({fastest})")
    best = max(fits, key=lambda r: (r.values[score] if objs[score].maximize else -r.values[score], -r.values[lat]))
    return [best]


def _latency_index(objs: Sequence[Objective]) -> int:
    for i, o in enumerate(objs):
        if not o.maximize:
            return i
    raise HsearchError("--best-under-latency needs a study with a minimised latency objective")


def find_checkpoint(rec: TrialRecord, study_name: str, artifacts: str | os.PathLike | None) -> Path | None:
    candidates = []
    if rec.attrs.get("checkpoint_dir"):
        candidates.append(Path(rec.attrs["checkpoint_dir"]))
    if rec.attrs.get("artifacts_dir"):  # the search's trial folder
        candidates.append(Path(rec.attrs["artifacts_dir"]) / "checkpoint")
    # The layout `hsearch run --artifacts DIR` writes: DIR/<study>/trial-<n>/.
    candidates.append(Path(artifacts or defaults.ARTIFACTS) / study_name / f"trial-{rec.number}" / "checkpoint")
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    return None


def export(storage: str | None, study_name: str | None, out: str | Path, *, trial: int | None = None,
           front: bool = False, max_latency_ms: float | None = None, force: bool = False,
           artifacts: str | None = None) -> list[Exported]:
    study = load_study(storage, study_name)
    chosen = choose(study, trial=trial, front=front, max_latency_ms=max_latency_ms)
    out = Path(out)
    check_target(out, MARKER, force=force)
    with tempfile.TemporaryDirectory(prefix="hsearch-export-") as downloads:
        # The trial's own folder when this machine has it, else the copy in the study's artifact
        # store (a trial that ran on another node).
        checkpoints = {r.number: find_checkpoint(r, study.study_name, artifacts) for r in chosen}
        fetched = set()
        for r in chosen:
            if checkpoints[r.number] is None:
                checkpoints[r.number] = fetch_folder(study, r.number, "checkpoint", Path(downloads))
                fetched.add(r.number)
        return _export(study, chosen, checkpoints, fetched, out, front=front, force=force, artifacts=artifacts)


def _export(study, chosen, checkpoints: dict, fetched: set, out: Path, *, front: bool, force: bool,
            artifacts: str | None) -> list[Exported]:
    missing = [r.number for r in chosen if checkpoints[r.number] is None]
    if missing:
        raise HsearchError(
            f"export: trial(s) {', '.join(f'#{n}' for n in missing)} kept no checkpoint (no checkpoint_dir "
            f"attr and nothing under {Path(artifacts or defaults.ARTIFACTS) / study.study_name}/trial-N/checkpoint); "
            "and none in the study's artifact store; rerun the search with a recipe that keeps checkpoints, "
            "or pass --artifacts"
        )
    objs = objectives(study)
    info = study_info(study)
    done: list[Exported] = []
    with staged_folder(out, MARKER, force=force) as tmp:
        single = len(chosen) == 1 and not front
        for rec in chosen:
            folder = tmp if single else tmp / f"trial-{rec.number}"
            folder.mkdir(exist_ok=True)
            _write_model(rec, checkpoints[rec.number], folder)
            (folder / "README.md").write_text(
                model_card(rec, objs, info, study.study_name, str(out if single else out / folder.name)),
                encoding="utf-8",
            )
            done.append(Exported(rec.number, rec.layout, out if single else out / folder.name, True))
        (tmp / "seeds.yaml").write_text(seeds_yaml(chosen, objs, study.study_name), encoding="utf-8")
        manifest = {
            "hsearch_export": 1,
            "study": study.study_name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "trials": [
                {"trial": e.trial, "layout": e.layout, "folder": "." if single else e.folder.name,
                 "checkpoint": "artifact store " + study.user_attrs["artifact_store"] if e.trial in fetched
                 else str(checkpoints[e.trial].resolve())}
                for e in done
            ],
        }
        write_marker(tmp, MARKER, manifest)
    return done


def _write_model(rec: TrialRecord, checkpoint: Path, folder: Path) -> None:
    import hsearch.model  # noqa: F401  (registers the Auto classes)
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one line per exported trial is enough

    config = AutoConfig.from_pretrained(checkpoint)
    stored = getattr(config, "layout", None)
    if stored is None or str(Layout.parse(str(stored))) != str(Layout.parse(rec.layout)):
        raise HsearchError(
            f"export: checkpoint {checkpoint} has layout {stored!r} but trial #{rec.number} ran {rec.layout!r}"
        )
    model = AutoModelForMaskedLM.from_pretrained(checkpoint)
    model.save_pretrained(folder, safe_serialization=True)
    try:
        AutoTokenizer.from_pretrained(checkpoint).save_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise HsearchError(f"export: checkpoint {checkpoint} has no loadable tokenizer ({exc})".splitlines()[0]) from exc


def _num(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) else ("-" if v is None else str(v))


def model_card(rec: TrialRecord, objs: Sequence[Objective], info: dict[str, Any], study_name: str,
               where: str = "PATH") -> str:
    a = rec.attrs
    layout = Layout.parse(rec.layout)
    hw = rec.hardware
    hw_text = ", ".join(f"{k}: {v}" for k, v in sorted(hw.items())) or a.get("device", "not recorded")
    scores = [f"| {o.name} (search objective, {o.direction}) | {_num(v)} |" for o, v in zip(objs, rec.values)]
    for task, acc in rec.task_accuracies().items():
        test = a.get(f"{task}_test_accuracy")
        scores.append(f"| {task} accuracy (score split / report split) | {_num(acc)} / {_num(test)} |")
    scores.append(f"| MLM accuracy (held-out, masked positions) | {_num(a.get('mlm_accuracy'))} |")
    lat = a.get("latency_ms")
    lat_text = f"{lat:.3f} ms ± {a.get('latency_ms_spread', 0.0):.3f} (measured: steady latency ± IQR of all runs)" if lat is not None else "-"
    if a.get("latency_ms_predicted") is not None:
        lat_text += f"; {a['latency_ms_predicted']:.3f} ms predicted by the cost table (the search's objective)"
    return f"""---
library_name: transformers
tags:
- hsearch
- hybrid-bert
- fill-mask
---

# hsearch trial #{rec.number}: `{layout}`

A BERT-style encoder whose attention layout was found by hsearch (neural architecture search over attention
layouts) in study `{study_name}` (trial #{rec.number}, origin `{rec.origin or 'unknown'}`). Per layer:
{", ".join(f"{i}:{k}/{n}" for i, (k, n) in enumerate(zip(layout.kinds, layout.norms)))}
(S = full self-attention, A = additive/Fastformer, L = local window).

```python
import hsearch.model  # registers the hybrid-bert model type with the Auto classes
from transformers import AutoModelForMaskedLM, AutoTokenizer
model = AutoModelForMaskedLM.from_pretrained({json.dumps(where)})
tokenizer = AutoTokenizer.from_pretrained({json.dumps(where)})
```

## Pipelines and fine-tuning

It fills masks with `pipeline("fill-mask", model={json.dumps(where)})`. To fine-tune it as a classifier
with your label names and classify with them, given `train`, a tokenised `datasets.Dataset`
with an integer `label` column (e.g. `load_dataset("csv", data_files="train.csv", split="train")`
mapped through `tokenizer`; give both `id2label` and `label2id`, as the folder's config holds
placeholder ones; `Trainer` needs `pip install accelerate`):

```python
from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments, pipeline
model = AutoModelForSequenceClassification.from_pretrained({json.dumps(where)}, id2label={{0: "negative", 1: "positive"}}, label2id={{"negative": 0, "positive": 1}})
Trainer(model=model, args=TrainingArguments("finetuned"), train_dataset=train, processing_class=tokenizer).train()
print(pipeline("text-classification", model=model, tokenizer=tokenizer)("what a lovely layout"))  # [{{'label': 'positive', ...}}]
```

## Scores

| metric | value |
|---|---|
{chr(10).join(scores)}

## Cost and setup

| | |
|---|---|
| latency | {lat_text}, path {a.get('latency_path', '-')} |
| parameters | {_num(a.get('params'))} |
| pretraining budget | {a.get('budget') or info.get('budget', '-')} ({_num(a.get('pretrain_seconds'), 1)} s charged) |
| tokens seen | {_num(a.get('tokens_seen'))} ({_num(a.get('tokens_per_second'), 0)} tokens/s) |
| optimizer steps | {_num(a.get('optimizer_steps'))} |
| recipe | {a.get('recipe', info.get('recipe', '-'))} (hash {a.get('recipe_hash', info.get('recipe_hash', '-'))}) |
| search space | {info.get('space', '-')} |
| hardware | {hw_text} |
| study | {study_name}, trial #{rec.number}, seed {a.get('seed', '-')} |

These numbers come from a short, budgeted pretraining run: they rank layouts against each
other under the same budget and hardware, and say little about a fully trained model.
"""


def seeds_yaml(chosen: Sequence[TrialRecord], objs: Sequence[Objective], study_name: str) -> str:
    """A ``seeds:`` list a search space file can take as is (layout strings, quoted)."""
    lines = [f"# Seed layouts exported by `hsearch export` from study {study_name}.", "seeds:"]
    for r in chosen:
        scores = ", ".join(f"{o.name}={v:.4g}" for o, v in zip(objs, r.values))
        lines.append(f"  - {json.dumps(r.layout)}  # trial {r.number}: {scores}")
    return "\n".join(lines) + "\n"
