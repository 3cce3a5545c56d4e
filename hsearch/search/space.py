"""Search spaces: a YAML file -> Optuna categorical parameters -> a layout (+ options).

File format (see ``search_spaces/hbert.yaml`` and ``extended.yaml``)::

    name: hbert
    description: ...
    num_layers: 12
    kind: {choices: [S, A], per_layer: true}        # attention kind
    norm: {choices: [post, pre, sub], per_layer: false}
    globals:                                          # optional model-wide choices
      hidden_act: {choices: [gelu, relu], recipe_key: model.hidden_act, default: gelu}
    constraints: {min_count: {S: 1}, max_count: {L: 6}}
    seeds: [bert-base, hbert-v1, "SSAA...:sub", {layout: hbert-v2, hidden_act: relu}]

Parameter names are stable because analysis reads them: ``layer_00_kind`` ..
``layer_11_kind`` (or ``kind`` when one choice covers all layers), ``norm`` or
``layer_00_norm`` .., and each global under its own name. Globals reach the trial as
recipe overrides (``recipe_key``), so they change the recipe hash as they should.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hsearch.builtin import builtin_file, builtin_files
from hsearch.errors import HsearchError
from hsearch.layout import KINDS, NORMS, PRESETS, Layout, LayoutError, resolve
from hsearch.yamlfile import load_yaml


class SpaceError(HsearchError, ValueError):
    """A search space file that is malformed or inconsistent."""


_TOP_KEYS = ("name", "description", "num_layers", "kind", "norm", "globals", "constraints", "seeds")
_CHOICE_KEYS = ("choices", "per_layer")
_GLOBAL_KEYS = ("choices", "recipe_key", "default")
_CONSTRAINT_KEYS = ("min_count", "max_count", "max_latency_ms", "max_params")


@dataclass(frozen=True)
class GlobalChoice:
    name: str
    choices: tuple[Any, ...]
    recipe_key: str
    default: Any = None


@dataclass(frozen=True)
class Seed:
    label: str  # preset name or layout string, for the "origin" attribute
    params: Mapping[str, Any]
    layout: Layout


@dataclass(frozen=True)
class SearchSpace:
    name: str
    path: str
    num_layers: int
    kinds: tuple[str, ...]
    kind_per_layer: bool
    norms: tuple[str, ...]
    norm_per_layer: bool
    globals: tuple[GlobalChoice, ...] = ()
    min_count: Mapping[str, int] = field(default_factory=dict)
    max_count: Mapping[str, int] = field(default_factory=dict)
    seeds: tuple[Seed, ...] = ()
    description: str = ""
    max_latency_ms: float | None = None  # cap on the predicted latency; --max-latency-ms overrides
    max_params: int | None = None  # cap on the parameter count; --max-params overrides

    # -- parameters ---------------------------------------------------------------
    def kind_param(self, i: int) -> str:
        return f"layer_{i:02d}_kind" if self.kind_per_layer else "kind"

    def norm_param(self, i: int) -> str:
        return f"layer_{i:02d}_norm" if self.norm_per_layer else "norm"

    def param_names(self) -> list[str]:
        names = list(dict.fromkeys(self.kind_param(i) for i in range(self.num_layers)))
        names += list(dict.fromkeys(self.norm_param(i) for i in range(self.num_layers)))
        return names + [g.name for g in self.globals]

    def choices(self, param: str) -> tuple[Any, ...]:
        if param == "kind" or param.endswith("_kind"):
            return self.kinds
        if param == "norm" or param.endswith("_norm"):
            return self.norms
        return next(g.choices for g in self.globals if g.name == param)

    def suggest(self, trial) -> dict[str, Any]:
        """Ask an Optuna trial for every parameter (fixed ones come back as enqueued)."""
        return {p: trial.suggest_categorical(p, list(self.choices(p))) for p in self.param_names()}

    def layout(self, params: Mapping[str, Any]) -> Layout:
        kinds = tuple(params[self.kind_param(i)] for i in range(self.num_layers))
        norms = tuple(params[self.norm_param(i)] for i in range(self.num_layers))
        return Layout(kinds, norms)

    def overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Recipe overrides for the global choices in ``params``."""
        return {g.recipe_key: params[g.name] for g in self.globals}

    def violations(self, layout: Layout) -> list[str]:
        """Constraints the layout breaks, as readable text (empty when it is allowed)."""
        out = []
        for kind, n in self.min_count.items():
            if layout.count(kind) < n:
                out.append(f"at least {n} {kind} layer(s) required, layout has {layout.count(kind)}")
        for kind, n in self.max_count.items():
            if layout.count(kind) > n:
                out.append(f"at most {n} {kind} layer(s) allowed, layout has {layout.count(kind)}")
        return out

    def params_for(self, layout: Layout, global_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameters that express ``layout``; SpaceError when the space cannot."""
        global_values = dict(global_values or {})
        if layout.num_layers != self.num_layers:
            raise SpaceError(f"{layout} has {layout.num_layers} layers, the space has {self.num_layers}")
        params: dict[str, Any] = {}
        for i, (k, n) in enumerate(zip(layout.kinds, layout.norms)):
            for param, value, allowed in ((self.kind_param(i), k, self.kinds), (self.norm_param(i), n, self.norms)):
                if value not in allowed:
                    raise SpaceError(
                        f"{layout}: layer {i} uses {value!r}, not in this space (allowed: {', '.join(allowed)})"
                    )
                if params.setdefault(param, value) != value:
                    what = "kind" if param == "kind" else "norm placement"
                    raise SpaceError(f"{layout}: this space uses one {what} for every layer")
        for g in self.globals:
            if g.name not in global_values:
                if g.default is None:
                    raise SpaceError(f"{layout}: no value for global choice {g.name!r} and no default in the space")
                global_values[g.name] = g.default
            value = global_values.pop(g.name)
            if value not in g.choices:
                raise SpaceError(
                    f"{layout}: {g.name}={value!r} is not allowed (allowed: {', '.join(map(str, g.choices))})"
                )
            params[g.name] = value
        if global_values:
            raise SpaceError(f"{layout}: unknown global choice(s) {', '.join(global_values)}")
        return params


# -- loading ----------------------------------------------------------------------


def _check_keys(where: str, data: Mapping, allowed: tuple[str, ...]) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise SpaceError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")


def _choice(where: str, data: Any, allowed: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    if not isinstance(data, Mapping):
        raise SpaceError(f"{where}: expected a mapping with 'choices' and 'per_layer'")
    _check_keys(where, data, _CHOICE_KEYS)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise SpaceError(f"{where}.choices: expected a non-empty list (allowed values: {', '.join(allowed)})")
    for c in choices:
        if c not in allowed:
            raise SpaceError(f"{where}.choices: unknown value {c!r} (allowed: {', '.join(allowed)})")
    if len(set(choices)) != len(choices):
        raise SpaceError(f"{where}.choices: duplicate values in {choices}")
    per_layer = data.get("per_layer", True)
    if not isinstance(per_layer, bool):
        raise SpaceError(f"{where}.per_layer: expected true or false, got {per_layer!r}")
    return tuple(choices), per_layer


def _globals(where: str, data: Any) -> tuple[GlobalChoice, ...]:
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise SpaceError(f"{where}: expected a mapping of name -> {{choices, recipe_key, default}}")
    out = []
    reserved = {"kind", "norm"}
    for name, spec in data.items():
        w = f"{where}.{name}"
        if not isinstance(name, str) or not name.isidentifier() or name in reserved or name.startswith("layer_"):
            raise SpaceError(f"{w}: invalid name (an identifier, not kind/norm/layer_*)")
        if not isinstance(spec, Mapping):
            raise SpaceError(f"{w}: expected a mapping with choices, recipe_key, default")
        _check_keys(w, spec, _GLOBAL_KEYS)
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{w}.choices: expected a non-empty list")
        if not all(isinstance(c, (str, int, float, bool)) for c in choices):
            raise SpaceError(f"{w}.choices: values must be strings, numbers or booleans")
        key = spec.get("recipe_key")
        if not isinstance(key, str) or not key:
            raise SpaceError(f"{w}.recipe_key: expected the dotted recipe key it sets, e.g. model.{name}")
        default = spec.get("default")
        if default is not None and default not in choices:
            raise SpaceError(f"{w}.default: {default!r} is not one of the choices {choices}")
        out.append(GlobalChoice(name, tuple(choices), key, default))
    return tuple(out)


def _counts(where: str, data: Any, kinds: tuple[str, ...], num_layers: int) -> dict[str, int]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SpaceError(f"{where}: expected a mapping kind -> count, e.g. {{S: 1}}")
    out = {}
    for kind, n in data.items():
        if kind not in kinds:
            raise SpaceError(f"{where}: kind {kind!r} is not searched (allowed: {', '.join(kinds)})")
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= num_layers:
            raise SpaceError(f"{where}.{kind}: expected an integer 0..{num_layers}, got {n!r}")
        out[kind] = n
    return out


def _seed(where: str, space: SearchSpace, entry: Any) -> Seed:
    values: dict[str, Any] = {}
    if isinstance(entry, Mapping):
        if "layout" not in entry:
            raise SpaceError(f"{where}: a seed mapping needs 'layout' (a preset name or layout string)")
        values = {k: v for k, v in entry.items() if k != "layout"}
        entry = entry["layout"]
    if not isinstance(entry, str):
        raise SpaceError(f"{where}: expected a preset name ({', '.join(PRESETS)}) or a layout string")
    try:
        layout, options, preset = resolve(entry)
    except LayoutError as exc:
        raise SpaceError(f"{where}: {exc}") from None
    # A preset's own model options fill global choices of the same name (e.g. hidden_act).
    for g in space.globals:
        if g.name not in values and g.name in options and options[g.name] in g.choices:
            values[g.name] = options[g.name]
    try:
        params = space.params_for(layout, values)
    except SpaceError as exc:
        raise SpaceError(f"{where}: seed {entry!r} cannot be expressed by this space: {exc}") from None
    broken = space.violations(layout)
    if broken:
        raise SpaceError(f"{where}: seed {entry!r} breaks the space's constraints: {'; '.join(broken)}")
    return Seed(preset or str(layout), params, layout)


def _cap(where: str, value: Any, kind: type) -> Any:
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
    if not ok or (kind is int and not float(value).is_integer()):
        raise SpaceError(f"{where}: expected a positive {'integer' if kind is int else 'number'}, got {value!r}")
    return kind(value)


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate a search space YAML; errors name the file and key."""
    path = Path(path)
    if not path.is_file():
        # A bare name ("hbert", "hbert.yaml") or a checkout-style "search_spaces/hbert.yaml"
        # finds the space that ships inside the package (importlib.resources), from any folder.
        found = None
        if not path.is_absolute() and str(path.parent) in (".", "search_spaces"):
            found = builtin_file("spaces", path.name)
        if found is None:
            known = ", ".join(builtin_files("spaces")) or "none"
            raise SpaceError(f"search space file {str(path)!r} not found (built-in spaces: {known})")
        path = found
    where = str(path)
    data = load_yaml(path, SpaceError, "search space")
    if not isinstance(data, Mapping):
        raise SpaceError(f"{where}: expected a mapping with keys {', '.join(_TOP_KEYS)}")
    _check_keys(where, data, _TOP_KEYS)
    for key in ("name", "num_layers", "kind", "norm"):
        if key not in data:
            raise SpaceError(f"{where}: missing key {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SpaceError(f"{where}: name must be a non-empty word (letters, digits, - _ .), got {name!r}")
    n = data["num_layers"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 99:
        raise SpaceError(f"{where}: num_layers must be an integer 1..99, got {n!r}")
    kinds, kind_per_layer = _choice(f"{where}: kind", data["kind"], KINDS)
    norms, norm_per_layer = _choice(f"{where}: norm", data["norm"], NORMS)
    constraints = data.get("constraints") or {}
    if not isinstance(constraints, Mapping):
        raise SpaceError(f"{where}: constraints: expected a mapping with {', '.join(_CONSTRAINT_KEYS)}")
    _check_keys(f"{where}: constraints", constraints, _CONSTRAINT_KEYS)
    space = SearchSpace(
        name=name,
        path=str(path),
        num_layers=n,
        kinds=kinds,
        kind_per_layer=kind_per_layer,
        norms=norms,
        norm_per_layer=norm_per_layer,
        globals=_globals(f"{where}: globals", data.get("globals")),
        min_count=_counts(f"{where}: constraints.min_count", constraints.get("min_count"), kinds, n),
        max_count=_counts(f"{where}: constraints.max_count", constraints.get("max_count"), kinds, n),
        description=str(data.get("description") or ""),
        max_latency_ms=_cap(f"{where}: constraints.max_latency_ms", constraints.get("max_latency_ms"), float),
        max_params=_cap(f"{where}: constraints.max_params", constraints.get("max_params"), int),
    )
    seeds_data = data.get("seeds") or []
    if not isinstance(seeds_data, list):
        raise SpaceError(f"{where}: seeds: expected a list of preset names or layout strings")
    seeds = []
    for i, entry in enumerate(seeds_data):
        seed = _seed(f"{where}: seeds[{i}]", space, entry)
        if any(s.params == seed.params for s in seeds):
            raise SpaceError(f"{where}: seeds[{i}]: {seed.label!r} repeats an earlier seed")
        seeds.append(seed)
    return SearchSpace(**{**space.__dict__, "seeds": tuple(seeds)})
