"""Warm-start a hybrid model from a Hugging Face BERT (the paper's §4.4 experiment).

Copied wherever the structure matches: embeddings (+ their LN), the q/k/v/output projections of
S and L layers (q, k, v concatenated into the fused projection), every layer's FFN, the two LNs
of post-norm layers, the pooler and the MLM head. Left as initialised: A layers (no BERT
counterpart), pre/sub-norm layers' LNs (BERT's LN weights were trained for the post position),
sub-LN inner norms and exit norms. The report lists both sides by parameter name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from hsearch.model.config import ConfigError
from hsearch.model.modeling import HybridBertModel, HybridBertPreTrainedModel


@dataclass
class InitReport:
    copied: dict[str, str] = field(default_factory=dict)  # our parameter -> BERT source(s)
    fresh: list[str] = field(default_factory=list)  # our parameters left as initialised
    unused: list[str] = field(default_factory=list)  # BERT parameters nothing was copied from
    notes: list[str] = field(default_factory=list)
    copied_numel: int = 0
    total_numel: int = 0

    @property
    def copied_fraction(self) -> float:
        return self.copied_numel / self.total_numel if self.total_numel else 0.0

    def summary(self) -> str:
        lines = [
            f"copied {len(self.copied)} tensors ({self.copied_numel:,} of {self.total_numel:,} parameters, "
            f"{self.copied_fraction:.1%}); {len(self.fresh)} tensors left freshly initialised; "
            f"{len(self.unused)} BERT tensors unused"
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _split(model: nn.Module, base_type: type) -> tuple[nn.Module, str]:
    """The base encoder inside a head model, and its parameter-name prefix."""
    if isinstance(model, base_type):
        return model, ""
    inner = getattr(model, "bert", None)
    if isinstance(inner, base_type):
        return inner, "bert."
    raise ConfigError(f"expected a {base_type.__name__} or a model with a .bert {base_type.__name__}, got {type(model).__name__}")


def init_from_bert(model: HybridBertPreTrainedModel, bert: nn.Module | str) -> InitReport:
    """Copy ``bert``'s weights (a ``BertModel``/``BertForMaskedLM`` or a path/name loadable as
    ``BertForMaskedLM``) into every matching part of ``model``, in place; returns what was done."""
    from transformers import BertForMaskedLM, BertModel

    if isinstance(bert, str):
        bert = BertForMaskedLM.from_pretrained(bert)
    ours, our_prefix = _split(model, HybridBertModel)
    theirs, their_prefix = _split(bert, BertModel)
    cfg, bcfg = ours.config, theirs.config
    for key in ("hidden_size", "num_attention_heads", "intermediate_size", "vocab_size"):
        if getattr(cfg, key) != getattr(bcfg, key):
            raise ConfigError(
                f"init_from_bert: {key} differs (hybrid {getattr(cfg, key)}, BERT {getattr(bcfg, key)}); "
                "the two models must have the same dimensions"
            )
    if cfg.num_hidden_layers != bcfg.num_hidden_layers:
        raise ConfigError(
            f"init_from_bert: the hybrid model has {cfg.num_hidden_layers} layers, BERT {bcfg.num_hidden_layers}"
        )

    report = InitReport()
    dst = dict(model.named_parameters())
    src = {n: p.detach() for n, p in bert.named_parameters()}
    used: set[str] = set()

    def b(name: str) -> str:
        return their_prefix + name

    def copy(our: str, *bert_names: str, rows: int | None = None) -> None:
        name = our_prefix + our
        if name not in dst or not all(b(n) in src for n in bert_names):
            return
        value = torch.cat([src[b(n)] for n in bert_names]) if len(bert_names) > 1 else src[b(bert_names[0])]
        if rows is not None:
            value = value[:rows]
        if value.shape != dst[name].shape:
            report.notes.append(f"{name}: shape {tuple(dst[name].shape)} != BERT {tuple(value.shape)}, left fresh")
            return
        with torch.no_grad():
            dst[name].copy_(value)
        report.copied[name] = " + ".join(b(n) for n in bert_names)
        used.update(b(n) for n in bert_names)

    def copy_module(our: str, their: str, params: tuple[str, ...] = ("weight", "bias")) -> None:
        for p in params:
            copy(f"{our}.{p}", f"{their}.{p}")

    # Embeddings.
    copy("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight")
    if cfg.position_embedding == "learned":
        if cfg.max_position_embeddings <= bcfg.max_position_embeddings:
            copy("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight",
                 rows=cfg.max_position_embeddings)
        else:
            report.notes.append("position embeddings: the hybrid model has more positions than BERT, left fresh")
    else:
        report.notes.append("sinusoidal positions: BERT's learned position embeddings are not used")
    if cfg.type_vocab_size == bcfg.type_vocab_size:
        copy("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight")
    copy_module("embeddings.LayerNorm", "embeddings.LayerNorm")

    # Layers.
    layout = cfg.parsed_layout
    for i, (kind, norm) in enumerate(zip(layout.kinds, layout.norms)):
        ours_l, theirs_l = f"encoder.layer.{i}", f"encoder.layer.{i}"
        if kind in ("S", "L"):
            for p in ("weight", "bias"):
                copy(f"{ours_l}.attention.qkv.{p}", *(f"{theirs_l}.attention.self.{n}.{p}" for n in ("query", "key", "value")))
            copy_module(f"{ours_l}.attention.out", f"{theirs_l}.attention.output.dense")
        copy_module(f"{ours_l}.ffn.fc1", f"{theirs_l}.intermediate.dense")
        copy_module(f"{ours_l}.ffn.fc2", f"{theirs_l}.output.dense")
        if norm == "post":
            copy_module(f"{ours_l}.attention_norm", f"{theirs_l}.attention.output.LayerNorm")
            copy_module(f"{ours_l}.ffn_norm", f"{theirs_l}.output.LayerNorm")
    if ours.pooler is not None:
        copy_module("pooler.dense", "pooler.dense")

    # MLM head (both sides must have one); the decoder weight is tied to the word embeddings.
    if hasattr(model, "lm_head") and hasattr(bert, "cls"):
        head = {n: p.detach() for n, p in bert.cls.named_parameters()}
        for ours_n, theirs_n in (("dense.weight", "predictions.transform.dense.weight"),
                                 ("dense.bias", "predictions.transform.dense.bias"),
                                 ("LayerNorm.weight", "predictions.transform.LayerNorm.weight"),
                                 ("LayerNorm.bias", "predictions.transform.LayerNorm.bias"),
                                 ("decoder.bias", "predictions.bias")):
            name = f"lm_head.{ours_n}"
            if name in dst and theirs_n in head and head[theirs_n].shape == dst[name].shape:
                with torch.no_grad():
                    dst[name].copy_(head[theirs_n])
                report.copied[name] = f"cls.{theirs_n}"
                used.add(f"cls.{theirs_n}")
        if "lm_head.decoder.weight" in dst and model.lm_head.decoder.weight is ours.embeddings.word_embeddings.weight:
            used.add("cls.predictions.decoder.weight")

    if cfg.hidden_act != bcfg.hidden_act:
        report.notes.append(f"activation differs: hybrid {cfg.hidden_act}, BERT {bcfg.hidden_act} (weights copied anyway)")
    if not cfg.ffn_bias:
        report.notes.append("the hybrid FFN has no biases: BERT's FFN biases are dropped")
    report.fresh = [n for n in dst if n not in report.copied]
    report.unused = [n for n in src if n not in used and not n.endswith("decoder.bias")]
    report.copied_numel = sum(dst[n].numel() for n in report.copied)
    report.total_numel = sum(p.numel() for p in dst.values())
    return report
