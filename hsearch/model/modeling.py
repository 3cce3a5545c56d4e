"""Hugging Face model classes: base encoder, masked-LM head (sparse at masked positions), classifier."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
)

from hsearch.model.attention import AdditiveAttention
from hsearch.model.config import HybridBertConfig
from hsearch.model.embeddings import HybridBertEmbeddings, sinusoidal_table
from hsearch.model.layers import ACTIVATIONS, HybridBertEncoder, subln_init_gain, subln_scaled_rows


class HybridBertPreTrainedModel(PreTrainedModel):
    config: HybridBertConfig
    config_class = HybridBertConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = False
    _no_split_modules = ["HybridBertEmbeddings", "HybridBertLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """All of the family's initialisation. transformers calls this once per module that holds
        parameters of its own (skipping modules loaded by ``from_pretrained``):

        * BERT's init from the base class: normal(0, initializer_range) weights, zero biases,
          unit LayerNorms;
        * in a sub-LN layer, right after a linear got BERT's init: the rows that
          :func:`~hsearch.model.layers.subln_scaled_rows` names, times :func:`subln_init_gain`
          of the model's depth (torchscale / Magneto) -- see :meth:`_subln_scaled_rows`;
        * ``A``'s per-head pooling vectors: normal(0, initializer_range);
        * sinusoidal position tables: rebuilt (they are not saved).

        The ``init`` helpers, and the ``_is_hf_initialized`` check below, leave tensors loaded
        by ``from_pretrained`` as loaded.
        """
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            rows = self._subln_scaled_rows().get(id(module.weight))
            if rows is not None and not getattr(module.weight, "_is_hf_initialized", False):
                module.weight[rows].mul_(subln_init_gain(self.config.num_hidden_layers))
        elif isinstance(module, AdditiveAttention):
            init.normal_(module.query_score, mean=0.0, std=std)
            init.normal_(module.key_score, mean=0.0, std=std)
        elif isinstance(module, HybridBertEmbeddings) and module.sinusoidal:
            init.copy_(module.position_table, sinusoidal_table(*module.position_table.shape))

    def _subln_scaled_rows(self) -> dict[int, slice]:
        """``id(weight) -> rows`` for every weight sub-LN initialisation scales in this model
        (by parameter name, from :func:`~hsearch.model.layers.subln_scaled_rows`)."""
        base = self if isinstance(self, HybridBertModel) else getattr(self, "bert", None)
        encoder = getattr(base, "encoder", None)
        out: dict[int, slice] = {}
        for layer in getattr(encoder, "layer", ()):
            params = dict(layer.named_parameters())
            for name, rows in subln_scaled_rows(layer):
                out[id(params[name])] = rows
        return out


class HybridBertPooler(nn.Module):
    """BERT's pooler, tanh(dense(summary)), where the summary is the [CLS] hidden state or, with
    ``classifier_pooling="mean"``, the mean over unpadded tokens (as ModernBERT offers)."""

    def __init__(self, config: HybridBertConfig) -> None:
        super().__init__()
        self.mean = config.classifier_pooling == "mean"
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self.mean:
            summary = hidden[:, 0]
        elif attention_mask is None:
            summary = hidden.mean(dim=1)
        else:
            weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
            summary = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return torch.tanh(self.dense(summary))


class HybridBertModel(HybridBertPreTrainedModel):
    def __init__(self, config: HybridBertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = HybridBertEmbeddings(config)
        self.encoder = HybridBertEncoder(config)
        self.pooler = HybridBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if output_hidden_states is None:
            output_hidden_states = bool(self.config.output_hidden_states)
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        x, states = self.encoder(x, attention_mask, output_hidden_states)
        pooled = self.pooler(x, attention_mask) if self.pooler is not None else None
        if return_dict is False:
            return tuple(v for v in (x, pooled, states) if v is not None)
        return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=pooled, hidden_states=states)


class HybridBertLMHead(nn.Module):
    """BERT's MLM head: dense + activation + LN, then the decoder tied to the word embeddings."""

    def __init__(self, config: HybridBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.LayerNorm(self.act(self.dense(hidden))))


class HybridBertForMaskedLM(HybridBertPreTrainedModel):
    _tied_weights_keys = {"lm_head.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __init__(self, config: HybridBertConfig) -> None:
        super().__init__(config)
        self.bert = HybridBertModel(config, add_pooling_layer=False)
        self.lm_head = HybridBertLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head.decoder = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> MaskedLMOutput | tuple:
        """With ``labels``: logits only at positions where labels != -100, shape [n_masked, vocab]
        in row-major order of those positions (the vocab projection never runs elsewhere)."""
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                        output_hidden_states=output_hidden_states, return_dict=True)
        hidden = out.last_hidden_state
        loss = None
        if labels is None:
            logits = self.lm_head(hidden)
        else:
            selected = labels != -100
            logits = self.lm_head(hidden[selected])
            targets = labels[selected]
            if targets.numel():
                loss = F.cross_entropy(logits.float(), targets)
            else:
                # No masked token: a zero loss (not NaN, which a trainer would read as divergence).
                loss = logits.float().sum() * 0.0
        if return_dict is False:
            return tuple(v for v in (loss, logits, out.hidden_states) if v is not None)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


class HybridBertForSequenceClassification(HybridBertPreTrainedModel):
    # Fine-tuning starts from an MLM checkpoint: its head is expected to be dropped.
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: HybridBertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = HybridBertModel(config, add_pooling_layer=True)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput | tuple:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                        output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None
        if labels is not None:
            loss = self._loss(logits, labels)
        if return_dict is False:
            return tuple(v for v in (loss, logits, out.hidden_states) if v is not None)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        problem = self.config.problem_type
        if problem is None:  # same inference as transformers' BERT
            if self.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
            self.config.problem_type = problem
        if problem == "regression":
            if self.num_labels == 1:
                return F.mse_loss(logits.squeeze().float(), labels.squeeze().float())
            return F.mse_loss(logits.float(), labels.float())
        if problem == "single_label_classification":
            return F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
