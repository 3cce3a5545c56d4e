"""Reading records from local files (.txt, .jsonl, .jsonl.gz, .parquet) or the Hugging Face Hub."""

from __future__ import annotations

import glob
import gzip
import json
import os
from pathlib import Path
from typing import Any, Iterator

from hsearch.errors import HsearchError


class DataError(HsearchError, ValueError):
    """Missing or malformed data (files, fields, dataset ids)."""


LOCAL_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz", ".json", ".parquet")


def data_dir_from_env(data_dir: str | Path | None) -> Path | None:
    """The offline data folder: the argument, else ``$HSEARCH_DATA_DIR``, else None (use the Hub)."""
    value = data_dir if data_dir is not None else os.environ.get("HSEARCH_DATA_DIR")
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory {path} does not exist (from {'--data-dir' if data_dir else 'HSEARCH_DATA_DIR'})")
    return path


def expand_files(patterns: list[str], where: str) -> list[Path]:
    """Files named by paths, globs or folders, sorted so the order is deterministic."""
    found: list[Path] = []
    for pattern in patterns:
        p = Path(pattern).expanduser()
        if p.is_dir():
            matches = sorted(x for x in p.iterdir() if x.name.endswith(LOCAL_SUFFIXES))
        else:
            matches = sorted(Path(x) for x in glob.glob(str(p)))
        matches = [m for m in matches if m.is_file()]
        if not matches:
            raise DataError(f"{where}: no data files match {pattern!r} (formats: {', '.join(LOCAL_SUFFIXES)})")
        found.extend(matches)
    return found


def iter_records(path: Path, text_field: str) -> Iterator[dict[str, Any]]:
    """Records of one local file; a ``.txt`` file is one document per blank-line-separated block."""
    name = path.name
    if name.endswith(".txt"):
        block: list[str] = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    block.append(line.rstrip("\n"))
                elif block:
                    yield {text_field: "\n".join(block)}
                    block = []
        if block:
            yield {text_field: "\n".join(block)}
    elif name.endswith((".jsonl", ".jsonl.gz", ".json")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    elif name.endswith(".parquet"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
    else:
        raise DataError(f"{path}: unsupported data file type (formats: {', '.join(LOCAL_SUFFIXES)})")


def field_of(record: dict[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise DataError(f"{where}: record has no field {key!r} (fields: {', '.join(map(str, record)) or 'none'})")
    return record[key]


def load_hub(dataset: str, config: str | None, split: str, *, streaming: bool = False):
    """``datasets.load_dataset`` with failures turned into a one-line DataError."""
    import datasets

    try:
        return datasets.load_dataset(dataset, config, split=split, streaming=streaming)
    except Exception as exc:  # noqa: BLE001 - any hub/network/config failure is a data error here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(
            f"cannot load Hugging Face dataset {dataset!r} (config {config!r}, split {split!r}): {first}; "
            f"for offline use pass --data-dir (or HSEARCH_DATA_DIR)"
        ) from None
