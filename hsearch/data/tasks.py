"""Downstream classification tasks (Emotion, MASSIVE, or any text/label set) as plain lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsearch.data.sources import DataError, data_dir_from_env, field_of, iter_records, load_hub
from hsearch.data.specs import BUILTIN_TASKS, LOCAL_FIELDS, TaskSource, task_source


@dataclass
class TaskData:
    name: str
    splits: dict[str, tuple[list[str], list[int]]]  # split -> (texts, labels)
    num_labels: int
    source: str


def label_of(record: dict[str, Any], label_field: str, path: Path) -> int:
    """A record's class id (an integer), else a one-line DataError naming the file."""
    label = field_of(record, label_field, str(path))
    if isinstance(label, bool) or not isinstance(label, int):
        raise DataError(f"{path}: label field {label_field!r} must hold integer class ids, got {label!r}")
    return label


def _local_split(path: Path, text_field: str, label_field: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for rec in iter_records(path, text_field):
        texts.append(str(field_of(rec, text_field, str(path))))
        labels.append(label_of(rec, label_field, path))
    return texts, labels


def load_task(name: str, source: TaskSource, splits: list[str], data_dir: str | Path | None) -> TaskData:
    """Load ``splits`` of one task. Unset fields of ``source`` take the built-in task's facts.

    Resolution: explicit ``files`` > ``DATA_DIR/<local_dir>/<split>.jsonl`` > the Hub.
    """
    src = task_source(name, source)
    root = data_dir_from_env(data_dir)
    text_field, label_field = src.text_field or "text", src.label_field or "label"
    out: dict[str, tuple[list[str], list[int]]] = {}
    if src.files or (root is not None and src.local_dir):
        fields = local_fields(name, src, root)
        for split, path in task_files(name, src, splits, root).items():
            out[split] = _local_split(path, *fields)
        where = "files" if src.files else str(root / src.local_dir)
    elif src.dataset:
        for split in splits:
            ds = load_hub(src.dataset, src.config, split)
            for col in (text_field, label_field):
                if col not in ds.column_names:
                    raise DataError(f"task {name!r}: dataset {src.dataset} has no column {col!r} "
                                    f"(columns: {', '.join(ds.column_names)})")
            out[split] = ([str(t) for t in ds[text_field]], [int(v) for v in ds[label_field]])
        where = f"hub {src.dataset}"
    else:
        raise DataError(f"task {name!r}: no data source (give dataset, files, or local_dir with --data-dir)")
    num_labels = src.num_labels or 1 + max(max(lab) for _, lab in out.values() if lab)
    for split, (_, labels) in out.items():
        if not labels:
            raise DataError(f"task {name!r}: split {split!r} is empty")
        bad = [v for v in labels if not 0 <= v < num_labels]
        if bad:
            raise DataError(f"task {name!r}: split {split!r} has label {bad[0]} outside 0..{num_labels - 1}")
    return TaskData(name, out, int(num_labels), where)


def local_fields(name: str, source: TaskSource, root: Path | None) -> tuple[str, str]:
    """(text, label) field names in a task's local files: a built-in task's offline copy under
    DATA_DIR always uses ``text``/``label``; otherwise the source's fields (default the same)."""
    if not source.files and root is not None and source.local_dir and name in BUILTIN_TASKS:
        return LOCAL_FIELDS
    return source.text_field or "text", source.label_field or "label"


def task_files(name: str, source: TaskSource, splits: list[str], root: Path | None) -> dict[str, Path]:
    """The local file of each split (``source`` already merged with built-in facts), checked to
    exist; empty when the task comes from the Hub."""
    out: dict[str, Path] = {}
    if source.files:
        for split in splits:
            if split not in source.files:
                raise DataError(f"task {name!r}: no file for split {split!r} (files given: {', '.join(source.files)})")
            path = Path(source.files[split]).expanduser()
            if not path.is_file():
                raise DataError(f"task {name!r}: data file {path} not found")
            out[split] = path
    elif root is not None and source.local_dir:
        folder = root / source.local_dir
        for split in splits:
            path = folder / f"{split}.jsonl"
            if not path.is_file():
                raise DataError(f"task {name!r}: data file {path} not found (layout: DATA_DIR/{source.local_dir}/"
                                f"{{train,validation,test}}.jsonl)")
            out[split] = path
    return out
