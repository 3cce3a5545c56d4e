"""`HybridBertConfig`: a BERT-style encoder whose layers each pick an attention kind and a norm placement."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from hsearch.errors import HsearchError
from hsearch.layout import KINDS, NORMS, PRESETS, Layout, LayoutError, resolve

POSITION_EMBEDDINGS = ("learned", "sinusoidal")
ACTIVATIONS = ("gelu", "relu")
CLASSIFIER_POOLINGS = ("cls", "mean")


class ConfigError(HsearchError, ValueError):
    """An invalid model configuration (names the key, the value and what is allowed)."""


class HybridBertConfig(PreTrainedConfig):
    r"""Configuration of the hybrid encoder family: a BERT-style encoder whose layers each pick an
    attention kind (``S`` self, ``L`` local, ``A`` additive) and a norm placement (``post``,
    ``pre``, ``sub``). Presets and their paper options come through :meth:`from_layout`.

    Args:
        layout (`str`, *optional*, defaults to `"SASA:sub"`):
            The layout string, one letter per layer and a norm (``SASASASASASA:sub``) or per-layer
            norms (``S/pre A/sub ...``). Stored in canonical form; it fixes the number of layers.
        vocab_size (`int`, *optional*, defaults to 30522):
            Number of token ids the embeddings and the MLM decoder cover.
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the residual stream, embeddings and pooler.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Heads of every attention layer; must divide ``hidden_size``.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Width of the feed-forward sub-layer.
        num_hidden_layers (`int`, *optional*):
            Number of encoder layers. Derived from ``layout`` when unset; must agree with it when given.
        max_position_embeddings (`int`, *optional*, defaults to 512):
            Longest sequence the position embeddings (learned or sinusoidal) cover.
        position_embedding (`str`, *optional*, defaults to `"learned"`):
            ``"learned"`` (BERT) or ``"sinusoidal"`` (a fixed table, not saved, rebuilt at load).
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the feed-forward sub-layer and the MLM head: ``"gelu"`` or ``"relu"``.
        ffn_bias (`bool`, *optional*, defaults to `True`):
            Whether the two feed-forward linears have biases.
        attention_bias (`bool`, *optional*, defaults to `True`):
            Whether the attention projections (q/k/v, ``A``'s transform, output) have biases.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on the embeddings and on every sub-layer output before its residual add.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on the attention probabilities of ``S`` and ``L`` layers (``A`` has none).
        local_window (`int`, *optional*, defaults to 128):
            Full width of the band an ``L`` layer attends to (each token sees ±window/2 tokens).
        layer_norm_eps (`float`, *optional*, defaults to 1e-12):
            Epsilon of every LayerNorm.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal init of weights (sub-LN layers scale some of them
            further, see ``HybridBertPreTrainedModel._init_weights``).
        type_vocab_size (`int`, *optional*, defaults to 2):
            Number of token types (segment ids); 0 means no token-type embedding.
        pad_token_id (`int`, *optional*, defaults to 0):
            The padding id; its word embedding row is initialised to zero. ``None``: no padding id.
        classifier_dropout (`float`, *optional*):
            Dropout before the classification head; ``None`` uses ``hidden_dropout_prob``.
        classifier_pooling (`str`, *optional*, defaults to `"cls"`):
            What the pooler summarises for classification: ``"cls"`` (the first token, as BERT)
            or ``"mean"`` (the mean over unpadded tokens).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Whether the MLM decoder shares its weight with the word embeddings.
    """

    model_type = "hybrid-bert"

    layout: str = "SASA:sub"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    num_hidden_layers: int | None = None
    max_position_embeddings: int = 512
    position_embedding: str = "learned"
    hidden_act: str = "gelu"
    ffn_bias: bool = True
    attention_bias: bool = True
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    local_window: int = 128
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    type_vocab_size: int = 2
    pad_token_id: int | None = 0
    classifier_dropout: float | None = None
    classifier_pooling: str = "cls"
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        self._validate()
        super().__post_init__(**kwargs)

    # -- validation ---------------------------------------------------------------------------
    def _validate(self) -> None:
        layout = self.layout
        if isinstance(layout, Layout):
            layout = str(layout)
        if not isinstance(layout, str):
            raise ConfigError(f"layout: expected a layout string such as 'SASA:sub', got {self.layout!r}")
        try:
            parsed = Layout.parse(layout)
        except LayoutError as exc:
            hint = ""
            if layout.strip().lower() in PRESETS:
                hint = f" ({layout!r} is a preset name: use HybridBertConfig.from_layout({layout!r}))"
            raise ConfigError(f"layout: {exc}{hint}") from None
        self.layout = str(parsed)  # canonical form, so saved configs compare equal
        if self.num_hidden_layers is None:
            self.num_hidden_layers = parsed.num_layers
        elif _int(self.num_hidden_layers, "num_hidden_layers") != parsed.num_layers:
            raise ConfigError(
                f"num_hidden_layers={self.num_hidden_layers} does not match layout {self.layout!r}, "
                f"which has {parsed.num_layers} layers (leave num_hidden_layers unset to derive it)"
            )
        for key in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                    "max_position_embeddings", "local_window"):
            if _int(getattr(self, key), key) < 1:
                raise ConfigError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        if _int(self.type_vocab_size, "type_vocab_size") < 0:
            raise ConfigError(f"type_vocab_size must be >= 0 (0 = no token types), got {self.type_vocab_size!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads="
                f"{self.num_attention_heads}: every head needs hidden_size/num_attention_heads dimensions"
            )
        _choice(self.position_embedding, "position_embedding", POSITION_EMBEDDINGS)
        _choice(self.hidden_act, "hidden_act", ACTIVATIONS)
        _choice(self.classifier_pooling, "classifier_pooling", CLASSIFIER_POOLINGS)
        for key in ("ffn_bias", "attention_bias", "tie_word_embeddings"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, key)
            if value is None and key == "classifier_dropout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{key} must be a probability in [0, 1), got {value!r}")
        for key in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{key} must be a positive number, got {value!r}")
        if self.pad_token_id is not None and not 0 <= _int(self.pad_token_id, "pad_token_id") < self.vocab_size:
            raise ConfigError(f"pad_token_id={self.pad_token_id} is outside the vocabulary [0, {self.vocab_size})")

    # -- helpers ------------------------------------------------------------------------------
    @property
    def parsed_layout(self) -> Layout:
        return Layout.parse(self.layout)

    @classmethod
    def from_layout(cls, name_or_layout: str | Layout, **overrides: Any) -> "HybridBertConfig":
        """A preset name or layout string: the preset's paper options apply first, then ``overrides``."""
        if isinstance(name_or_layout, Layout):
            layout, options = name_or_layout, {}
        else:
            layout, options, _ = resolve(name_or_layout)
        return cls(layout=str(layout), **{**dict(options), **overrides})


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    return value


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not supported (allowed: {', '.join(allowed)})")


__all__ = ["ConfigError", "HybridBertConfig", "KINDS", "NORMS", "POSITION_EMBEDDINGS", "ACTIVATIONS"]
