"""Data: tokenizers, the packed pretraining corpus (cached), downstream tasks."""

from hsearch.data.cache import cache_root
from hsearch.data.corpus import PackedCorpus, is_heldout, prepare_corpus
from hsearch.data.sources import DataError, data_dir_from_env
from hsearch.data.tasks import TaskData, load_task
from hsearch.data.tokenizer import fingerprint, load_tokenizer

__all__ = ["DataError", "PackedCorpus", "TaskData", "cache_root", "data_dir_from_env", "fingerprint",
           "is_heldout", "load_task", "load_tokenizer", "prepare_corpus"]
