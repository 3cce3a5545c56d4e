"""The hybrid encoder family (per-layer S/A/L attention, post/pre/sub norms), Hugging Face native.

Importing this package registers the classes with transformers' Auto classes under
``model_type = "hybrid-bert"``, so saved models load without ``trust_remote_code``.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

from hsearch.model.bert_init import InitReport, init_from_bert
from hsearch.model.config import ConfigError, HybridBertConfig
from hsearch.model.modeling import (
    HybridBertForMaskedLM,
    HybridBertForSequenceClassification,
    HybridBertModel,
    HybridBertPreTrainedModel,
)

AutoConfig.register(HybridBertConfig.model_type, HybridBertConfig, exist_ok=True)
AutoModel.register(HybridBertConfig, HybridBertModel, exist_ok=True)
AutoModelForMaskedLM.register(HybridBertConfig, HybridBertForMaskedLM, exist_ok=True)
AutoModelForSequenceClassification.register(HybridBertConfig, HybridBertForSequenceClassification, exist_ok=True)

__all__ = [
    "ConfigError",
    "HybridBertConfig",
    "HybridBertForMaskedLM",
    "HybridBertForSequenceClassification",
    "HybridBertModel",
    "HybridBertPreTrainedModel",
    "InitReport",
    "init_from_bert",
]
