"""Reading records from local files (.txt, .jsonl, .jsonl.gz, .parquet) or the Hugging Face Hub."""

from __future__ import annotations

import glob
import gzip
import json
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from hsearch.errors import HsearchError

if TYPE_CHECKING:
    from hsearch.data.specs import CorpusSpec


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


def corpus_files(spec: "CorpusSpec", data_dir: str | Path | None) -> list[Path] | None:
    """The local files of a pretraining corpus in their fixed order, or None when it comes
    from the Hub: ``spec.files`` > ``DATA_DIR/<local_dir>/`` > the Hub."""
    root = data_dir_from_env(data_dir)
    if spec.files:
        return expand_files(list(spec.files), "corpus.files")
    if root is None:
        return None
    folder = root / spec.local_dir
    if not folder.is_dir():
        raise DataError(f"corpus folder {folder} not found (expected DATA_DIR/{spec.local_dir}/*.jsonl.gz)")
    return expand_files([str(folder)], f"corpus in {folder}")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file, gzip-compressed when it ends in ``.gz``.

    Each line is decoded on its own, so a bad byte is reported at its own line; a file that
    is not the gzip, or not the UTF-8, it claims to be is a one-line DataError naming it.
    """
    lineno = 0
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                line = raw.decode("utf-8")
                yield lineno, line[:-2] + "\n" if line.endswith("\r\n") else line
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{lineno}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column "
                        f"{exc.start + 1})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}:{lineno + 1}: not a readable gzip file ({exc})") from None


def iter_records(path: Path, text_field: str) -> Iterator[dict[str, Any]]:
    """Records of one local file; a ``.txt`` file is one document per blank-line-separated block.

    Bad content (not gzip, not UTF-8, not JSON, a JSON line that is not an object, not
    parquet) is a one-line :class:`DataError` naming the file and, for text, the line.
    """
    name = path.name
    if name.endswith(".txt"):
        block: list[str] = []
        for _, line in _lines(path):
            if line.strip():
                block.append(line.rstrip("\n"))
            elif block:
                yield {text_field: "\n".join(block)}
                block = []
        if block:
            yield {text_field: "\n".join(block)}
    elif name.endswith((".jsonl", ".jsonl.gz", ".json")):
        for lineno, line in _lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object (one record per line), "
                                f"got {type(record).__name__}")
            yield record
    elif name.endswith(".parquet"):
        import pyarrow
        import pyarrow.parquet as pq

        try:
            batches = pq.ParquetFile(path).iter_batches()
            for batch in batches:
                yield from batch.to_pylist()
        except (pyarrow.ArrowException, OSError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"{path}: not a readable parquet file ({first})") from None
    else:
        raise DataError(f"{path}: unsupported data file type (formats: {', '.join(LOCAL_SUFFIXES)})")


def first_records(path: Path, text_field: str, count: int = 3) -> list[dict[str, Any]]:
    """The first ``count`` records of a local file (fewer if it has fewer); errors as iter_records."""
    records = []
    for record in iter_records(path, text_field):
        records.append(record)
        if len(records) >= count:
            break
    return records


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
