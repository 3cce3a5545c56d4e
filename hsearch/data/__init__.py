"""Data: tokenizers, the packed pretraining corpus (cached), downstream tasks.

The specs (:mod:`hsearch.data.specs`) and file checks are pure Python; names are imported
lazily, so reading a spec or checking files imports neither numpy nor transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BUILTIN_TASKS": "specs", "CorpusSpec": "specs", "TaskSource": "specs", "TokenizerSpec": "specs",
    "TokenizerTrain": "specs",
    "DataError": "sources", "data_dir_from_env": "sources",
    "cache_root": "cache",
    "PackedCorpus": "corpus", "is_heldout": "corpus", "prepare_corpus": "corpus",
    "TaskData": "tasks", "UnseenLabelError": "tasks", "load_task": "tasks",
    "fingerprint": "tokenizer", "load_tokenizer": "tokenizer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hsearch.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hsearch.data' has no attribute {name!r}")
