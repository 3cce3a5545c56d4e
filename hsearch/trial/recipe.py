"""Trial recipes: a YAML file -> a validated, hashable :class:`Recipe`.

The built-in recipes ship inside the package (``hsearch/builtin/trials/*.yaml``; a checkout's
``trials/`` links to them). A recipe may start from another with ``base: NAME-or-PATH`` and
hold only the keys it changes: the chain of bases is merged (:func:`resolve_recipe`) before
validation, so the hash covers the resolved recipe.

A recipe says how one layout is trained and scored: model width, tokenizer, corpus,
pretraining budget and optimiser, downstream tasks and the latency protocol. The layout
itself (kinds, norms, number of layers) is not part of the recipe.

Every section is a dataclass; :func:`_build` walks the YAML against the dataclass fields so
an unknown key or a wrong type is an error naming the dotted key and the file.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hsearch.budget import Budget, BudgetError, parse_budget
from hsearch.builtin import SUFFIXES, builtin_dir, builtin_file, builtin_files
from hsearch.data.specs import BUILTIN_TASKS, CorpusSpec, TaskSource, TokenizerSpec
from hsearch.errors import HsearchError
from hsearch.yamlfile import load_yaml


class RecipeError(HsearchError, ValueError):
    """A recipe file or override that does not validate."""


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class ModelSpec:
    """Dimensions and options; ``None`` options come from the layout's preset (else model defaults)."""

    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    local_window: int = 128
    hidden_act: Literal["gelu", "relu"] | None = None
    ffn_bias: bool | None = None
    attention_bias: bool | None = None
    hidden_dropout_prob: float | None = None
    attention_probs_dropout_prob: float | None = None
    position_embedding: Literal["learned", "sinusoidal"] | None = None
    # Warm start (the paper's §4.4): a BERT checkpoint, a Hugging Face Hub id (bert-base-uncased)
    # or a local save_pretrained folder, whose matching parts (embeddings, S/L attention, FFNs,
    # post-norm LNs, MLM head) every candidate copies before pretraining (hsearch.model.init_from_bert).
    init_from: str | None = None


@dataclass(frozen=True)
class DeepSpeedSpec:
    zero_stage: int = 2
    config: dict[str, Any] = field(default_factory=dict)  # merged into the generated DS config


@dataclass(frozen=True)
class PretrainSpec:
    budget: Budget = field(default_factory=lambda: parse_budget("60s"))
    # How a time budget is charged: "wall-clock" stops when the clock says so; "cost-model"
    # takes as many steps as the measured cost table's step time fits (reproducible).
    charge: Literal["wall-clock", "cost-model"] = "wall-clock"
    batch_size: int = 32
    grad_accumulation: int = 1
    seq_len: int = 128
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of the budget spent warming up (wsd: of the first rung's steps)
    # "wsd": warmup-stable-decay over the fidelity rungs (hsearch.fidelity); needs a step count
    # fixed before training (a steps or tokens budget, or charge: cost-model).
    schedule: Literal["linear", "cosine", "constant", "wsd"] = "linear"
    grad_clip: float | None = 1.0
    mask_rate: float = 0.15
    sparse_mlm_head: bool = True  # decode only the masked positions
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    compile: bool = False
    engine: Literal["torch", "deepspeed"] = "torch"
    deepspeed: DeepSpeedSpec = field(default_factory=DeepSpeedSpec)
    eval_batch_size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class TaskSpec(TaskSource):
    """One downstream task: where its data comes from (the :class:`TaskSource` fields, built-in
    facts for unset ones) and how it is fine-tuned (unset fields take the ``finetune`` defaults)."""

    epochs: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    max_length: int | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None


@dataclass(frozen=True)
class TaskTraining:
    """How one task is fine-tuned: the ``finetune`` defaults with the task's own settings applied."""

    epochs: float
    batch_size: int
    lr: float
    max_length: int
    weight_decay: float
    warmup_ratio: float
    max_train_examples: int | None
    max_eval_examples: int | None


@dataclass(frozen=True)
class FinetuneSpec:
    tasks: dict[str, TaskSpec] = field(default_factory=lambda: {"emotion": TaskSpec(), "massive": TaskSpec()})
    seeds: int = 1
    score_split: str = "validation"
    report_split: str = "test"
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    max_eval_examples: int | None = None
    pooling: Literal["cls", "mean"] = "cls"  # the classifier's input: [CLS] (BERT) or the token mean

    def training(self, name: str) -> TaskTraining:
        """Task ``name``'s fine-tuning settings: these defaults < the task's own settings."""
        task = self.tasks[name]

        def pick(key: str, default: Any) -> Any:
            value = getattr(task, key)
            return default if value is None else value

        return TaskTraining(epochs=pick("epochs", self.epochs), batch_size=pick("batch_size", self.batch_size),
                            lr=pick("lr", self.lr), max_length=pick("max_length", self.max_length),
                            weight_decay=self.weight_decay, warmup_ratio=self.warmup_ratio,
                            max_train_examples=task.max_train_examples,
                            max_eval_examples=pick("max_eval_examples", self.max_eval_examples))


@dataclass(frozen=True)
class LatencySpec:
    enabled: bool = True
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    threads: int | None = 4
    seq_len: int = 128
    batch_size: int = 1
    warmup: int = 3
    runs: int = 20
    path: str = "auto"


@dataclass(frozen=True)
class ResourcesSpec:
    cpus: int = 1  # CPUs one trial needs (torch threads for a CPU trial; Ray num_cpus)
    gpus: float = 0.0


@dataclass(frozen=True)
class OutputSpec:
    keep_checkpoint: bool = False


@dataclass(frozen=True)
class FidelitySpec:
    """Multi-fidelity search (``hsearch.fidelity``): rungs as fractions of the pretraining steps."""

    rungs: list[str | float] = field(default_factory=lambda: [1.0])  # e.g. [1/9, 1/3, 1]
    eta: int = 3  # reduction factor: the top 1/eta of a rung's results go up
    decay: float = 0.2  # fraction of each rung's steps spent in its WSD decay branch
    # Layouts paused with their trunk state on disk, at most (beyond it the lowest rung's worst are
    # stopped): the disk state takes is at most (max_paused + trials running) x one state.
    max_paused: int = 32
    # Rungs whose results are fine-tuned: "top" (promotion below it on held-out MLM accuracy and
    # predicted latency) or "every" (promotion on the search objective at every rung).
    finetune: Literal["top", "every"] = "top"
    # The promotion score below the top rung (with finetune: top): held-out MLM accuracy, or
    # minus the held-out MLM loss, which still ranks layouts while accuracy sits on the
    # unigram plateau (docs/cpu-recipe.md).
    score: Literal["mlm-accuracy", "mlm-loss"] = "mlm-accuracy"

    @property
    def fractions(self) -> list[float]:
        from hsearch.fidelity import check_rungs

        return check_rungs(self.rungs)

    @property
    def multi(self) -> bool:
        return len(self.rungs) > 1


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    tokenizer: TokenizerSpec = field(default_factory=TokenizerSpec)
    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    pretrain: PretrainSpec = field(default_factory=PretrainSpec)
    finetune: FinetuneSpec = field(default_factory=FinetuneSpec)
    latency: LatencySpec = field(default_factory=LatencySpec)
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    fidelity: FidelitySpec = field(default_factory=FidelitySpec)
    path: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (budgets as their text); ``path`` is not content and is left out."""
        data = _plain(self)
        data.pop("path", None)
        return data

    @property
    def hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<stored recipe>") -> "Recipe":
        """The recipe :meth:`to_dict` gave (validated again; the hash is the same)."""
        return _validate(copy.deepcopy(data), source)

    def with_overrides(self, overrides: dict[str, Any]) -> "Recipe":
        raw = self.to_dict()
        _apply_overrides(raw, overrides, self.path or "<recipe>")
        return _validate(raw, self.path or "<recipe>")


def _plain(obj: Any) -> Any:
    if isinstance(obj, Budget):
        return obj.text
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is Budget:
        return "a budget string (e.g. 60s, 200M, 5000 steps)"
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; returns the typed value."""

    def bad(extra: str = "") -> RecipeError:
        return RecipeError(
            f"{source}: key {key!r} has wrong type: got {value!r} ({type(value).__name__}), "
            f"expected {_type_name(tp)}{extra}"
        )

    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad()
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except RecipeError:
                if len([a for a in args if a is not type(None)]) == 1:
                    raise
        raise bad()
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise RecipeError(
            f"{source}: key {key!r} has value {value!r}; allowed: "
            + ", ".join(repr(a) for a in typing.get_args(tp))
        )
    if tp is Budget:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad()
        try:
            return parse_budget(value)
        except BudgetError as exc:
            raise RecipeError(f"{source}: key {key!r}: {exc}") from None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad()
        return _build(tp, value, key, source)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise bad()
        return [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        ktp, vtp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise bad()
        return {str(k): _convert(v, vtp, f"{key}.{k}", source) if vtp is not Any else v for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    raise TypeError(f"unsupported recipe annotation {tp!r} for {key}")  # programming error


def _build(cls: type, data: dict[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if not (cls is Recipe and f.name == "path")]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise RecipeError(f"{source}: unknown key {dotted!r} (allowed: {', '.join(names)})")
        kwargs[key] = _convert(value, hints[key], dotted, source)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise RecipeError(f"{source}: section {prefix or '<top>'!r}: {exc}") from None


def _check(recipe: Recipe, source: str) -> None:
    """Value checks that types alone cannot express."""

    def need(cond: bool, key: str, why: str) -> None:
        if not cond:
            raise RecipeError(f"{source}: key {key!r} {why}")

    m, p, c, f, lat = recipe.model, recipe.pretrain, recipe.corpus, recipe.finetune, recipe.latency
    for key in ("hidden_size", "num_attention_heads", "intermediate_size", "max_position_embeddings"):
        need(getattr(m, key) > 0, f"model.{key}", "must be positive")
    need(m.hidden_size % m.num_attention_heads == 0, "model.hidden_size",
         f"({m.hidden_size}) must be divisible by model.num_attention_heads ({m.num_attention_heads})")
    if m.init_from is not None:
        need(bool(m.init_from.strip()), "model.init_from", "must name a BERT checkpoint (a Hub id or a local folder)")
        need(recipe.tokenizer.train is None, "model.init_from",
             f"({m.init_from!r}) needs the checkpoint's own vocabulary, but tokenizer.train learns a new one: "
             f"set tokenizer.train: null and tokenizer.name to the checkpoint's tokenizer (e.g. {m.init_from!r})")
    need(p.seq_len >= 8, "pretrain.seq_len", f"must be at least 8 (got {p.seq_len})")
    need(p.seq_len <= m.max_position_embeddings, "pretrain.seq_len",
         f"({p.seq_len}) exceeds model.max_position_embeddings ({m.max_position_embeddings})")
    need(p.batch_size > 0, "pretrain.batch_size", "must be positive")
    need(p.grad_accumulation > 0, "pretrain.grad_accumulation", "must be positive")
    need(p.lr > 0, "pretrain.lr", "must be positive")
    need(len(p.betas) == 2 and all(0 <= b < 1 for b in p.betas), "pretrain.betas", "must be two numbers in [0, 1)")
    need(0 <= p.warmup < 1, "pretrain.warmup", "is a fraction of the budget in [0, 1)")
    need(0 < p.mask_rate < 1, "pretrain.mask_rate", "must be in (0, 1)")
    fid = recipe.fidelity
    try:
        fid.fractions
    except ValueError as exc:
        need(False, "fidelity.rungs", str(exc))
    need(fid.eta >= 2, "fidelity.eta", f"must be at least 2 (got {fid.eta})")
    need(fid.max_paused >= 1, "fidelity.max_paused", "must be at least 1")
    need(0 <= fid.decay < 1, "fidelity.decay", "is a fraction of each rung's steps in [0, 1)")
    need(not fid.multi or p.schedule == "wsd", "fidelity.rungs",
         f"with more than one rung needs pretrain.schedule: wsd (got {p.schedule!r}): a rung is a decay "
         "branched off one constant-LR trunk")
    if p.schedule == "wsd":
        need(p.budget.kind != "time" or p.charge == "cost-model", "pretrain.schedule",
             "'wsd' needs the step count before training: a steps or tokens budget, or pretrain.charge: cost-model")
        need(p.engine == "torch", "pretrain.schedule", "'wsd' saves and resumes the optimiser state: needs engine: torch")
    need(p.deepspeed.zero_stage in (0, 1, 2), "pretrain.deepspeed.zero_stage", "allowed: 0, 1, 2")
    need(0 < c.heldout_fraction < 0.5, "corpus.heldout_fraction", "must be in (0, 0.5)")
    need(c.eval_blocks > 0, "corpus.eval_blocks", "must be positive")
    need(c.max_documents is None or c.max_documents > 0, "corpus.max_documents", "must be positive")
    need(c.max_tokens is None or c.max_tokens > 0, "corpus.max_tokens", "must be positive")
    if recipe.tokenizer.train is not None:
        need(recipe.tokenizer.train.vocab_size >= 100, "tokenizer.train.vocab_size", "must be at least 100")
    need(f.seeds > 0, "finetune.seeds", "must be positive")
    need(f.score_split != f.report_split, "finetune.report_split", "must differ from finetune.score_split")
    for name, task in f.tasks.items():
        if name not in BUILTIN_TASKS:
            need(task.dataset is not None or task.files is not None or task.local_dir is not None,
                 f"finetune.tasks.{name}",
                 f"is not a built-in task ({', '.join(BUILTIN_TASKS)}): declare dataset, files or local_dir")
        if task.files is not None:
            need("train" in task.files, f"finetune.tasks.{name}.files", "needs a 'train' entry")
    need(lat.seq_len > 0 and lat.batch_size > 0 and lat.runs > 0, "latency", "seq_len, batch_size, runs must be positive")
    need(lat.threads is None or lat.threads > 0, "latency.threads", "must be positive")
    need(recipe.resources.cpus > 0, "resources.cpus", "must be positive")


def _validate(raw: Any, source: str) -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    raw = dict(raw)
    raw.setdefault("name", Path(source).stem if source.endswith((".yaml", ".yml")) else "recipe")
    recipe = _build(Recipe, raw, "", source)
    _check(recipe, source)
    return dataclasses.replace(recipe, path=source)


# --------------------------------------------------------------------------- overrides


def _apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], source: str) -> None:
    """Set dotted keys in the raw mapping; the result is validated like the file."""
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        if not all(parts):
            raise RecipeError(f"{source}: override key {dotted!r} is not a dotted key like pretrain.budget")
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise RecipeError(f"{source}: override {dotted!r}: {'.'.join(parts[: i + 1])!r} is not a section")
            node = child
        if isinstance(value, str) and not parts[-1] in ("budget", "name", "description"):
            # Overrides from a command line arrive as text: read them as YAML scalars.
            try:
                value = yaml.safe_load(value) if value.strip() else value
            except yaml.YAMLError:
                pass
        node[parts[-1]] = copy.deepcopy(value)


# --------------------------------------------------------------------------- loading


def recipe_dirs() -> list[Path]:
    """Where bare recipe names are looked up: ./trials (the user's own), then the built-in
    recipes inside the package (:func:`hsearch.builtin.builtin_dir`, via importlib.resources)."""
    return [Path.cwd() / "trials", builtin_dir("trials")]


def _known_names() -> list[str]:
    return sorted({p.stem for d in recipe_dirs() if d.is_dir() for p in d.iterdir() if p.suffix in SUFFIXES})


def find_recipe(path_or_name: str | Path) -> Path:
    """A recipe file: a path (``*.yaml``/``*.yml`` or an existing file) as given, else a bare
    name looked up in :func:`recipe_dirs` (``./trials/NAME.yaml``, then the built-ins)."""
    candidate = Path(path_or_name)
    if candidate.suffix in SUFFIXES or candidate.exists():
        if not candidate.is_file():
            raise RecipeError(f"recipe file not found: {candidate}")
        return candidate
    for folder in recipe_dirs():
        for suffix in SUFFIXES:
            path = folder / f"{path_or_name}{suffix}"
            if path.is_file():
                return path
    raise RecipeError(f"no recipe named {str(path_or_name)!r} (known: {', '.join(_known_names()) or 'none'})")


def _read_layer(path: Path) -> dict[str, Any]:
    """One recipe file as a raw mapping (not yet merged with its base or validated)."""
    source = str(path)
    raw = load_yaml(path, RecipeError, "recipe")
    if raw is None:
        # An empty file is not "all defaults" (BERT-base on the whole of Wikipedia).
        raise RecipeError(f"{source}: the recipe is empty (a recipe is a mapping of sections such as "
                          f"model, corpus, pretrain, or base: cpu-small plus the keys it changes)")
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    return raw


def _find_base(base: Any, child: Path) -> Path:
    """``base:`` of ``child``: a path (it ends in .yaml/.yml or holds a /; relative to the
    child's folder) or the name of a built-in recipe (never ./trials: a file means the same
    wherever it is loaded from)."""
    builtin = ", ".join(builtin_files("trials"))
    if not isinstance(base, str) or not base.strip():
        raise RecipeError(f"{child}: key 'base' must be a built-in recipe name ({builtin}) or a path to a "
                          f"recipe file, got {base!r}")
    text = base.strip()
    if Path(text).suffix in SUFFIXES or "/" in text or os.sep in text:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = child.parent / path
        if not path.is_file():
            raise RecipeError(f"{child}: base {text!r}: recipe file not found: {path}")
        return path
    found = builtin_file("trials", text)
    if found is None:
        raise RecipeError(f"{child}: base {text!r} is not a built-in recipe (built-in: {builtin}; "
                          f"a path to another file ends in .yaml)")
    return found


def _drop_removed_tasks(layer: dict[str, Any]) -> dict[str, Any]:
    """In a layer that has a base, ``finetune.tasks.NAME: null`` removes the base's task: that
    marker is dropped before the layer's own check (the merge applies it)."""
    finetune = layer.get("finetune")
    if isinstance(finetune, dict) and isinstance(finetune.get("tasks"), dict):
        tasks = {k: v for k, v in finetune["tasks"].items() if v is not None}
        layer = {**layer, "finetune": {**finetune, "tasks": tasks}}
    return layer


def _merge(base: Any, child: Any, path: tuple[str, ...] = ()) -> Any:
    """Deep merge: a child's mapping merges into the base's; lists and scalars replace. Under
    ``finetune.tasks`` a child's ``NAME: null`` removes the base's task."""
    if not isinstance(child, dict):
        return copy.deepcopy(child)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in child.items():
        if value is None and path == ("finetune", "tasks"):
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value, (*path, str(key)))
    return out


@dataclass(frozen=True)
class ResolvedRecipe:
    """A recipe file with its bases merged in: the raw mapping (still to be validated) and
    the files it came from, the file itself first and its root base last."""

    raw: dict[str, Any]
    chain: tuple[Path, ...]


def resolve_recipe(path_or_name: str | Path) -> ResolvedRecipe:
    """Read a recipe file (or bare name) and merge in its chain of ``base:`` recipes.

    Each file is checked on its own first (unknown keys and wrong types name that file and
    the dotted key); the merged mapping is then validated by :func:`load_recipe`."""
    path = find_recipe(path_or_name)
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    seen: set[Path] = set()
    current = path
    while True:
        key = current.resolve()
        if key in seen:
            names = " -> ".join(str(p) for p in (*chain, current))
            raise RecipeError(f"{path}: the recipe's bases form a cycle: {names}")
        seen.add(key)
        chain.append(current)
        layer = _read_layer(current)
        has_base = "base" in layer
        base = layer.pop("base", None)
        if has_base:
            if "name" not in layer:
                raise RecipeError(f"{current}: a recipe with a base needs its own 'name' key "
                                  f"(it is not inherited from the base {base!r})")
        # The file's own keys and types, named by this file (values are checked once merged).
        check = _drop_removed_tasks(layer) if has_base else layer
        _build(Recipe, {"name": current.stem, **check}, "", str(current))
        layers.append(layer)
        if not has_base:
            break
        current = _find_base(base, current)
    raw = layers[-1]
    for layer in reversed(layers[:-1]):
        raw = _merge(raw, layer)
    return ResolvedRecipe(raw=raw, chain=tuple(chain))


def load_recipe(path_or_name: str | Path | Recipe, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load and validate a recipe file (or bare name): its ``base:`` chain merged in first,
    then the dotted-key overrides applied; the hash covers the resolved recipe."""
    if isinstance(path_or_name, Recipe):
        return path_or_name.with_overrides(overrides) if overrides else path_or_name
    resolved = resolve_recipe(path_or_name)
    path = resolved.chain[0]
    source = str(path)
    raw = resolved.raw
    if overrides:
        source = f"{source} (with overrides)"
        _apply_overrides(raw, overrides, source)
    recipe = _validate(raw, source)
    return dataclasses.replace(recipe, path=str(path))


def builtin_recipes() -> dict[str, Path]:
    """The recipes that ship inside the package, by name."""
    return builtin_files("trials")
