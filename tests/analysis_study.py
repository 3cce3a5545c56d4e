"""A small real study for the analysis tests: tiny trials trained for seconds, recorded the
way the search driver records them (hsearch.search.study), in a SQLite file.

Imported by tests/test_analysis_*.py; the fixtures are session-scoped so the trials run once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

STUDY = "analysis-tiny"
# Two seeds (as a space's seed entries would be labelled) and three sampled layouts.
SEEDS = ("SSSS:post", "AAAA:post")
SAMPLED = ("SASA:sub", "LLSS:pre", "SAAS:sub")
CANCELLED = "ALAL:pre"  # stopped before its first step: a real non-complete trial

SPACE_YAML = """\
name: tiny4
description: "4 layers x {S, A, L}, one norm for the model (analysis tests)"
num_layers: 4
kind: {choices: [S, A, L], per_layer: true}
norm: {choices: [post, pre, sub], per_layer: false}
seeds: ["SSSS:post", "AAAA:post"]
"""

OVERRIDES = {
    "model.hidden_size": 32,
    "model.num_attention_heads": 2,
    "model.intermediate_size": 64,
    "model.max_position_embeddings": 64,
    "model.local_window": 8,
    "tokenizer.train.vocab_size": 1000,
    "tokenizer.train.max_documents": 40,
    "corpus.max_documents": 40,
    "corpus.max_tokens": 20000,
    "corpus.eval_blocks": 16,
    "pretrain.budget": "3s",
    "pretrain.batch_size": 8,
    "pretrain.seq_len": 32,
    "pretrain.eval_batch_size": 16,
    "finetune.epochs": 1.0,
    "finetune.batch_size": 16,
    "finetune.max_length": 32,
    "finetune.max_eval_examples": 128,
    "finetune.tasks.emotion.max_train_examples": 256,
    "finetune.tasks.emotion.epochs": 1.0,
    "finetune.tasks.massive.max_train_examples": 256,
    "finetune.tasks.massive.epochs": 1.0,
    "latency.seq_len": 32,
    "latency.threads": 1,
    "latency.warmup": 1,
    "latency.runs": 5,
    "resources.cpus": 1,
    "output.keep_checkpoint": True,
}


@dataclass
class TinyStudy:
    storage: str  # sqlite URL
    db: Path
    name: str
    space_file: Path
    numbers: dict[str, int]  # layout -> trial number
    root: Path


def _record(study, space, layout: str, result, origin: str | None, wall: float, out_dir: Path) -> int:
    from hsearch.layout import Layout
    from hsearch.search.study import record_result, set_trial_attrs

    # The test picks every layout (deterministic); enqueueing makes Optuna store it as the
    # trial's parameters exactly as the driver's space.suggest() would.
    study.enqueue_trial(space.params_for(Layout.parse(layout)), user_attrs={"origin": origin} if origin else None)
    trial = study.ask()
    assert str(space.layout(space.suggest(trial))) == layout
    set_trial_attrs(
        study, trial,
        {"layout": layout, "space": space.name, "origin": origin or "sampler", "recipe": result.recipe_name,
         "recipe_hash": result.recipe_hash, "dispatched": True, "artifacts_dir": str(out_dir)},
    )
    record_result(study, trial, result, "mean", extra={"wall_seconds": wall, "cpu_seconds": wall, "gpu_seconds": 0.0})
    return trial.number


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, shared_data) -> TinyStudy:
    import optuna

    from hsearch.search.space import load_space
    from hsearch.search.study import open_study, update_ledger
    from hsearch.trial import load_recipe, run_trial

    root = tmp_path_factory.mktemp("analysis-study")
    space_file = root / "tiny4.yaml"
    space_file.write_text(SPACE_YAML)
    space = load_space(space_file)
    recipe = load_recipe("cpu-small", overrides=OVERRIDES)
    db = root / "study.db"
    storage = f"sqlite:///{db}"
    study = open_study(storage, STUDY, objective="mean", sampler="random", seed=0)
    for key, value in {"space": space.name, "recipe": recipe.name, "recipe_hash": recipe.hash,
                       "sampler": "random", "seed": 0, "budget": "3s"}.items():
        study.set_user_attr(key, value)
    numbers = {}
    for layout in (*SEEDS, *SAMPLED):
        out_dir = root / "artifacts" / f"trial-{len(numbers)}"
        t0 = time.time()
        result = run_trial(layout, recipe, data_dir=shared_data, out_dir=out_dir, seed=0, keep_checkpoint=True)
        assert result.ok, f"tiny trial {layout} did not complete: {result.status} {result.error}"
        origin = f"seed:{layout}" if layout in SEEDS else None
        numbers[layout] = _record(study, space, layout, result, origin, time.time() - t0, out_dir)
    out_dir = root / "artifacts" / f"trial-{len(numbers)}"
    result = run_trial(CANCELLED, recipe, data_dir=shared_data, out_dir=out_dir, seed=0, should_stop=lambda: True)
    assert not result.ok
    numbers[CANCELLED] = _record(study, space, CANCELLED, result, None, 0.1, out_dir)
    update_ledger(study)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == len(SEEDS) + len(SAMPLED)
    return TinyStudy(storage, db, STUDY, space_file, numbers, root)
