"""Downstream classification tasks (Emotion, MASSIVE, or any text/label set) as plain lists.

Every split loads through ``datasets`` (local files with the builder their extension names,
or the Hub), then one code path turns its label column into class ids:

- a ``ClassLabel`` column keeps its own ids, and its names in their own order;
- a column of strings maps to ids in the sorted order of the train split's distinct labels
  (``sorted(set(train))``: the same ids on every machine and in every run); a validation or
  test label that train never has is an :class:`UnseenLabelError` naming it, the split and
  the file or dataset;
- a column of integers is used as it is (ids ``0..num_labels-1``), without names.

The names (:attr:`TaskData.label_names`) go into the fine-tuned classifier's
``id2label``/``label2id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsearch.data.sources import DataError, data_dir_from_env, field_of, load_hub, load_local
from hsearch.data.specs import BUILTIN_TASKS, LOCAL_FIELDS, TaskSource, task_source


class UnseenLabelError(DataError):
    """A validation/test label that the train split never has (so it has no class id)."""


@dataclass
class TaskData:
    name: str
    splits: dict[str, tuple[list[str], list[int]]]  # split -> (texts, labels)
    num_labels: int
    source: str
    label_names: list[str] | None = None  # id -> name, when the labels have names

    @property
    def id2label(self) -> dict[int, str] | None:
        return None if self.label_names is None else dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int] | None:
        return None if self.label_names is None else {n: i for i, n in enumerate(self.label_names)}


def label_of(record: dict[str, Any], label_field: str, path: Path) -> int | str:
    """A record's label (an integer class id or a string name), else a one-line DataError
    naming the file."""
    label = field_of(record, label_field, str(path))
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise DataError(f"{path}: label field {label_field!r} must hold integer class ids or strings, got {label!r}")
    return label


def _kind(feature: Any) -> str:
    """``classlabel``, ``string``, ``int`` or the dtype of a label column's feature."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return "classlabel"
    dtype = getattr(feature, "dtype", type(feature).__name__)
    if dtype in ("string", "large_string"):
        return "string"
    if dtype.startswith(("int", "uint")):
        return "int"
    return dtype


class _Split:
    """One loaded split: its dataset and where it came from (a file, or a hub dataset)."""

    def __init__(self, name: str, src: TaskSource, split: str, path: Path | None, fields: tuple[str, str]):
        self.split, self.path = split, path
        self.text_field, self.label_field = fields
        if path is not None:
            self.ds = load_local([path])
            self.where = str(path)
        else:
            self.ds = load_hub(src.dataset, src.config, split)
            self.where = f"dataset {src.dataset}" + (f" ({src.config})" if src.config else "")
        names = list(self.ds.column_names)
        for col in fields:
            if col not in names:
                raise DataError(f"task {name!r}: {self.where}: record has no field {col!r} "
                                f"(fields: {', '.join(names) or 'none'})")
        feature = self.ds.features[self.label_field]
        self.kind = _kind(feature)
        self.names = list(feature.names) if self.kind == "classlabel" else None
        if self.kind not in ("classlabel", "string", "int"):
            raise DataError(f"task {name!r}: {self.where}: label field {self.label_field!r} must hold integer "
                            f"class ids or strings, got {self.kind} values")

    def texts(self) -> list[str]:
        return [str(t) for t in self.ds[self.text_field]]

    def raw_labels(self) -> list:
        values = list(self.ds[self.label_field])
        if None in values:
            row = values.index(None)
            raise DataError(f"{self.where}: record {row + 1} has no {self.label_field!r} label (null)")
        return values


def _label_names(name: str, train: _Split) -> list[str] | None:
    """The class names in id order: a ClassLabel's own order, else the sorted distinct strings
    of the train split, else None (integer ids)."""
    if train.kind == "classlabel":
        return train.names
    if train.kind == "string":
        return sorted(set(train.raw_labels()))
    return None


def _ids(name: str, part: _Split, names: list[str] | None, train_kind: str) -> list[int]:
    """A split's labels as class ids under the train split's naming."""
    values = part.raw_labels()
    if names is None:  # integer ids in train
        if part.kind != "int":
            raise DataError(f"task {name!r}: {part.where}: split {part.split!r} has {part.kind} labels but the "
                            f"train split has integer class ids")
        return [int(v) for v in values]
    if part.kind == "classlabel" and part.names == names:
        return [int(v) for v in values]
    if part.kind == "classlabel":  # other names or order: go by name
        values = [part.names[v] for v in values]
    elif part.kind == "int":
        if train_kind == "classlabel":  # ids under the train split's ClassLabel
            return [int(v) for v in values]
        raise DataError(f"task {name!r}: {part.where}: split {part.split!r} has integer labels but the train "
                        f"split has string labels")
    index = {n: i for i, n in enumerate(names)}
    for v in values:
        if v not in index:
            shown = ", ".join(map(repr, names[:8])) + (", …" if len(names) > 8 else "")
            raise UnseenLabelError(f"task {name!r}: label {v!r} in split {part.split!r} ({part.where}) does not "
                                   f"occur in the train split ({len(names)} labels: {shown})")
    return [index[v] for v in values]


def load_task(name: str, source: TaskSource, splits: list[str], data_dir: str | Path | None) -> TaskData:
    """Load ``splits`` of one task. Unset fields of ``source`` take the built-in task's facts.

    Resolution: explicit ``files`` > ``DATA_DIR/<local_dir>/<split>.jsonl`` > the Hub. Local
    files may be JSON lines, CSV or parquet (by extension). Labels: see the module doc.
    """
    src = task_source(name, source)
    root = data_dir_from_env(data_dir)
    local = bool(src.files or (root is not None and src.local_dir))
    if local:
        fields = local_fields(name, src, root)
        wanted = splits if "train" in splits else ["train", *splits]
        try:
            paths: dict[str, Path | None] = dict(task_files(name, src, wanted, root))
        except DataError:
            if wanted is splits:
                raise
            task_files(name, src, splits, root)  # the requested splits' own error first
            raise
        where = "files" if src.files else str(root / src.local_dir)
    elif src.dataset:
        fields = (src.text_field or "text", src.label_field or "label")
        paths = {split: None for split in (splits if "train" in splits else ["train", *splits])}
        where = f"hub {src.dataset}"
    else:
        raise DataError(f"task {name!r}: no data source (give dataset, files, or local_dir with --data-dir)")

    loaded = {split: _Split(name, src, split, path, fields) for split, path in paths.items()}
    train = loaded["train"]
    names = _label_names(name, train)
    out = {split: (loaded[split].texts(), _ids(name, loaded[split], names, train.kind)) for split in splits}
    if names is not None:
        if src.num_labels is not None and src.num_labels != len(names) and train.kind == "string":
            raise DataError(f"task {name!r}: num_labels is {src.num_labels} but the train split "
                            f"({train.where}) has {len(names)} distinct labels")
        num_labels = len(names)
    else:
        seen = [max(lab) for _, lab in out.values() if lab]
        num_labels = src.num_labels or (1 + max(seen) if seen else 0)
    for split, (_, labels) in out.items():
        if not labels:
            raise DataError(f"task {name!r}: split {split!r} is empty")
        bad = [v for v in labels if not 0 <= v < num_labels]
        if bad:
            raise DataError(f"task {name!r}: split {split!r} has label {bad[0]} outside 0..{num_labels - 1}")
    return TaskData(name, out, int(num_labels), where, names)


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
