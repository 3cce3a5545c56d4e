"""Downstream classification tasks (Emotion, MASSIVE, or any text/label set) as plain lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsearch.data.sources import DataError, data_dir_from_env, field_of, iter_records, load_hub

_LOCAL_FIELDS = ("text", "label")  # the offline layout's field names (see the README)


@dataclass
class TaskData:
    name: str
    splits: dict[str, tuple[list[str], list[int]]]  # split -> (texts, labels)
    num_labels: int
    source: str


def _local_split(path: Path, text_field: str, label_field: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for rec in iter_records(path, text_field):
        texts.append(str(field_of(rec, text_field, str(path))))
        label = field_of(rec, label_field, str(path))
        if isinstance(label, bool) or not isinstance(label, int):
            raise DataError(f"{path}: label field {label_field!r} must hold integer class ids, got {label!r}")
        labels.append(label)
    return texts, labels


def load_task(name: str, spec: dict[str, Any], splits: list[str], data_dir: str | Path | None) -> TaskData:
    """Load ``splits`` of one task. ``spec`` is the merged task settings (see trial.recipe).

    Resolution: explicit ``files`` > ``DATA_DIR/<local_dir>/<split>.jsonl`` > the Hub.
    """
    root = data_dir_from_env(data_dir)
    out: dict[str, tuple[list[str], list[int]]] = {}
    if spec.get("files"):
        files = spec["files"]
        for split in splits:
            if split not in files:
                raise DataError(f"task {name!r}: no file for split {split!r} (files given: {', '.join(files)})")
            path = Path(files[split]).expanduser()
            if not path.is_file():
                raise DataError(f"task {name!r}: data file {path} not found")
            out[split] = _local_split(path, spec.get("text_field") or "text", spec.get("label_field") or "label")
        source = "files"
    elif root is not None and spec.get("local_dir"):
        folder = root / spec["local_dir"]
        for split in splits:
            path = folder / f"{split}.jsonl"
            if not path.is_file():
                raise DataError(f"task {name!r}: data file {path} not found (layout: DATA_DIR/{spec['local_dir']}/"
                                f"{{train,validation,test}}.jsonl)")
            out[split] = _local_split(path, *_LOCAL_FIELDS) if spec.get("builtin") else _local_split(
                path, spec.get("text_field") or "text", spec.get("label_field") or "label")
        source = str(folder)
    elif spec.get("dataset"):
        for split in splits:
            ds = load_hub(spec["dataset"], spec.get("config"), split)
            text_field, label_field = spec.get("text_field") or "text", spec.get("label_field") or "label"
            for col in (text_field, label_field):
                if col not in ds.column_names:
                    raise DataError(f"task {name!r}: dataset {spec['dataset']} has no column {col!r} "
                                    f"(columns: {', '.join(ds.column_names)})")
            out[split] = ([str(t) for t in ds[text_field]], [int(v) for v in ds[label_field]])
        source = f"hub {spec['dataset']}"
    else:
        raise DataError(f"task {name!r}: no data source (give dataset, files, or local_dir with --data-dir)")
    num_labels = spec.get("num_labels") or 1 + max(max(lab) for _, lab in out.values() if lab)
    for split, (_, labels) in out.items():
        if not labels:
            raise DataError(f"task {name!r}: split {split!r} is empty")
        bad = [v for v in labels if not 0 <= v < num_labels]
        if bad:
            raise DataError(f"task {name!r}: split {split!r} has label {bad[0]} outside 0..{num_labels - 1}")
    return TaskData(name, out, int(num_labels), source)
