"""What the data layer is asked for: corpus, tokenizer and downstream-task specs (pure Python).

A trial recipe composes these sections (``hsearch.trial.recipe``); the data functions take
them typed. ``BUILTIN_TASKS`` holds the facts about the paper's two downstream tasks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenizerTrain:
    vocab_size: int = 8192
    min_frequency: int = 2
    max_documents: int = 20000  # documents of the training split the tokenizer learns from


@dataclass(frozen=True)
class TokenizerSpec:
    """``name`` (a hub tokenizer; bert-base-uncased falls back to the packaged vocab) or ``train``."""

    name: str = "bert-base-uncased"
    train: TokenizerTrain | None = None


@dataclass(frozen=True)
class CorpusSpec:
    """Where pretraining text comes from.

    Resolution order: ``files`` (explicit local paths/globs) > ``--data-dir``/HSEARCH_DATA_DIR
    (``DIR/<local_dir>/``) > the Hugging Face dataset ``dataset``/``config``/``split``.
    """

    dataset: str = "wikimedia/wikipedia"
    config: str | None = "20231101.en"
    split: str = "train"
    text_field: str = "text"
    files: list[str] | None = None
    local_dir: str = "wiki"
    heldout_fraction: float = 0.05
    max_documents: int | None = None  # cap on training documents read (None: all)
    max_tokens: int | None = None  # cap on packed training tokens (None: all)
    eval_blocks: int = 256  # held-out blocks scored for MLM accuracy


@dataclass(frozen=True)
class TaskSource:
    """Where one downstream classification task's data comes from; unset fields of a built-in
    task take its facts (:data:`BUILTIN_TASKS`).

    Resolution order: ``files`` (split -> local file) > ``DATA_DIR/<local_dir>/<split>.jsonl``
    > the Hugging Face dataset ``dataset``/``config``. Fields default to ``text``/``label``.
    """

    dataset: str | None = None
    config: str | None = None
    text_field: str | None = None
    label_field: str | None = None
    local_dir: str | None = None
    files: dict[str, str] | None = None  # split -> local file
    num_labels: int | None = None


# The offline copy of a built-in task (DATA_DIR/<local_dir>/<split>.jsonl, see the README)
# always has these fields, whatever its hub dataset calls them.
LOCAL_FIELDS = ("text", "label")

# Facts about the paper's two tasks; a recipe may override any of them.
BUILTIN_TASKS: dict[str, TaskSource] = {
    "emotion": TaskSource(dataset="dair-ai/emotion", text_field="text", label_field="label",
                          local_dir="emotion", num_labels=6),
    # AmazonScience/massive (config en-US) is a loading script, which datasets>=4 no longer runs;
    # SetFit's copy holds the same en-US rows and intent ids as parquet.
    "massive": TaskSource(dataset="SetFit/amazon_massive_intent_en-US", text_field="text", label_field="label",
                          local_dir="massive_en", num_labels=60),
}


def task_source(name: str, declared: TaskSource) -> TaskSource:
    """Built-in facts < the declared fields that are set. ``declared`` may be a subclass
    (a recipe's task section); only the source fields are read."""
    merged = {f.name: getattr(declared, f.name) for f in dataclasses.fields(TaskSource)}
    base = BUILTIN_TASKS.get(name)
    if base is not None:
        merged = {k: v if v is not None else getattr(base, k) for k, v in merged.items()}
    return TaskSource(**merged)
