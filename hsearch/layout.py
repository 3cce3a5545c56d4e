"""Layouts: per layer an attention kind and a norm placement (pure Python).

Two text forms, both accepted by :meth:`Layout.parse`:

* compact, one norm for every layer: ``SASASASASASA:sub``
* per layer, for mixed norms: ``S/pre A/sub S/post`` (whitespace separated)

``str(layout)`` gives the compact form when all norms agree and the per-layer form
otherwise, so ``Layout.parse(str(x)) == x`` always holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from hsearch.errors import HsearchError

KINDS: Mapping[str, str] = MappingProxyType(
    {
        "S": "full self-attention",
        "A": "additive attention (Fastformer)",
        "L": "local sliding-window self-attention",
    }
)
NORMS: Mapping[str, str] = MappingProxyType(
    {
        "post": "LN after the residual add (BERT)",
        "pre": "LN before each sub-layer (GPT-2, cramming)",
        "sub": "pre-LN plus an LN inside each sub-layer (Foundation Transformers)",
    }
)


class LayoutError(HsearchError, ValueError):
    """A layout string or preset name that cannot be understood."""


def _allowed(values) -> str:
    return ", ".join(values)


@dataclass(frozen=True)
class Layout:
    kinds: tuple[str, ...]
    norms: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.kinds:
            raise LayoutError("a layout needs at least one layer")
        if len(self.kinds) != len(self.norms):
            raise LayoutError(f"{len(self.kinds)} attention kinds but {len(self.norms)} norm placements")
        for i, k in enumerate(self.kinds):
            if k not in KINDS:
                raise LayoutError(f"layer {i}: unknown attention kind {k!r} (allowed: {_allowed(KINDS)})")
        for i, n in enumerate(self.norms):
            if n not in NORMS:
                raise LayoutError(f"layer {i}: unknown norm placement {n!r} (allowed: {_allowed(NORMS)})")

    @classmethod
    def uniform(cls, kinds: str, norm: str) -> "Layout":
        return cls(tuple(kinds), (norm,) * len(kinds))

    @classmethod
    def parse(cls, text: str) -> "Layout":
        """Parse either text form; errors name the offending character or token."""
        if not isinstance(text, str) or not text.strip():
            raise LayoutError("empty layout string")
        text = text.strip()
        if "/" in text:
            return cls._parse_per_layer(text)
        letters, sep, norm = text.partition(":")
        if not sep:
            raise LayoutError(
                f"layout {text!r} has no norm placement: write e.g. {text}:sub "
                f"(norms: {_allowed(NORMS)}) or the per-layer form 'S/pre A/sub ...'"
            )
        for pos, ch in enumerate(letters):
            if ch not in KINDS:
                raise LayoutError(
                    f"layout {text!r}: unknown attention kind {ch!r} at position {pos} "
                    f"(allowed: {_allowed(KINDS)})"
                )
        if norm not in NORMS:
            raise LayoutError(f"layout {text!r}: unknown norm placement {norm!r} (allowed: {_allowed(NORMS)})")
        if not letters:
            raise LayoutError(f"layout {text!r} has no layers")
        return cls.uniform(letters, norm)

    @classmethod
    def _parse_per_layer(cls, text: str) -> "Layout":
        kinds, norms = [], []
        for pos, token in enumerate(text.split()):
            kind, sep, norm = token.partition("/")
            if not sep or len(kind) != 1 or kind not in KINDS:
                raise LayoutError(
                    f"layout {text!r}: layer {pos} token {token!r} is not KIND/NORM "
                    f"(kinds: {_allowed(KINDS)}; norms: {_allowed(NORMS)})"
                )
            if norm not in NORMS:
                raise LayoutError(
                    f"layout {text!r}: layer {pos} has unknown norm placement {norm!r} "
                    f"(allowed: {_allowed(NORMS)})"
                )
            kinds.append(kind)
            norms.append(norm)
        return cls(tuple(kinds), tuple(norms))

    @property
    def num_layers(self) -> int:
        return len(self.kinds)

    @property
    def uniform_norm(self) -> str | None:
        """The single norm placement shared by every layer, or None when mixed."""
        return self.norms[0] if len(set(self.norms)) == 1 else None

    def __str__(self) -> str:
        if self.uniform_norm is not None:
            return f"{''.join(self.kinds)}:{self.uniform_norm}"
        return " ".join(f"{k}/{n}" for k, n in zip(self.kinds, self.norms))

    def count(self, kind: str) -> int:
        return self.kinds.count(kind)


@dataclass(frozen=True)
class Preset:
    """A named layout plus the model options the paper trained it with."""

    name: str
    layout: Layout
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)


# The paper (§3.2, §4.2): HBERT drops FFN biases (after cramming), uses ReLU, sinusoidal
# positions and dropout 0.005; the two baselines are vanilla BERT.
_VANILLA = MappingProxyType(
    {
        "hidden_act": "gelu",
        "ffn_bias": True,
        "attention_bias": True,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "position_embedding": "learned",
    }
)
_HBERT = MappingProxyType(
    {
        "hidden_act": "relu",
        "ffn_bias": False,
        "attention_bias": True,
        "hidden_dropout_prob": 0.005,
        "attention_probs_dropout_prob": 0.005,
        "position_embedding": "sinusoidal",
    }
)

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        p.name: p
        for p in (
            Preset("bert-base", Layout.uniform("S" * 12, "post"), "vanilla BERT-base", _VANILLA),
            Preset("addbert", Layout.uniform("A" * 12, "post"), "BERT with additive attention only", _VANILLA),
            Preset("hbert-v1", Layout.uniform("SA" * 6, "sub"), "HybridBERT v1: S at even, A at odd layers", _HBERT),
            Preset("hbert-v2", Layout.uniform("SS" + "A" * 8 + "SS", "sub"), "HybridBERT v2: S at 0,1,10,11", _HBERT),
        )
    }
)


def resolve(name_or_layout: str) -> tuple[Layout, Mapping[str, Any], str | None]:
    """A preset name or a layout string -> (layout, model options, preset name or None).

    A plain layout string carries no options: the trial recipe's options apply.
    """
    key = name_or_layout.strip()
    if key.lower() in PRESETS:
        preset = PRESETS[key.lower()]
        return preset.layout, preset.options, preset.name
    try:
        return Layout.parse(key), MappingProxyType({}), None
    except LayoutError as exc:
        if ":" not in key and "/" not in key and not set(key) <= set(KINDS):
            raise LayoutError(
                f"{key!r} is neither a preset ({_allowed(PRESETS)}) nor a layout string: {exc}"
            ) from None
        raise


def preset_name(layout: Layout) -> str | None:
    """The preset whose layout equals ``layout``, if any (for labelling seeds)."""
    for preset in PRESETS.values():
        if preset.layout == layout:
            return preset.name
    return None
