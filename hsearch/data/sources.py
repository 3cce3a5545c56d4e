"""Records from local files (.txt, .jsonl, .jsonl.gz, .json, .csv, .parquet) or the Hugging Face Hub.

Both load through ``datasets.load_dataset``: a Hub id as itself, local files with the builder
their extension names (``json``, ``csv``, ``parquet``, ``text``) and ``data_files``. So local
files are converted once to Arrow tables that are memory-mapped on reuse, cached under
``<cache root>/datasets`` (:func:`local_cache_dir`, beside hsearch's other caches), and the
code after loading is the same for both.

A file ``datasets`` cannot read is re-read by the small line reader here (:func:`iter_records`),
so the error names the file and the line; the same reader serves the preflight check, which
reads only the first records of each file and imports no ``datasets``.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import io
import itertools
import json
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from hsearch.data.cache import cache_root
from hsearch.errors import HsearchError

if TYPE_CHECKING:
    from hsearch.data.specs import CorpusSpec


class DataError(HsearchError, ValueError):
    """Missing or malformed data (files, fields, dataset ids)."""


LOCAL_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
# The `datasets` builder for each local format (a trailing .gz is decompressed first).
BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def builder_of(path: Path) -> str:
    """The ``datasets`` builder that reads ``path``, from its extension."""
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    for suffix, builder in BUILDERS.items():
        if name.endswith(suffix):
            return builder
    raise DataError(f"{path}: unsupported data file type (formats: {', '.join(LOCAL_SUFFIXES)})")


def local_cache_dir() -> Path:
    """Where ``datasets`` keeps the Arrow copies of local files: ``<cache root>/datasets``
    (``$HSEARCH_CACHE``, else ``$HF_HOME/hsearch``; see :func:`hsearch.data.cache.cache_root`)."""
    return cache_root() / "datasets"


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
    """Records of one local file, read line by line (the preflight's first records, and the
    precise error when ``datasets`` cannot read a file); a ``.txt`` file is one document per
    blank-line-separated block, a ``.csv`` file one record per line under its header.

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
    elif name.endswith((".csv", ".csv.gz")):
        header: list[str] | None = None
        for lineno, line in _lines(path):
            try:
                row = next(csv.reader(io.StringIO(line)), None)
            except csv.Error as exc:
                raise DataError(f"{path}:{lineno}: not valid CSV ({exc})") from None
            if row is None:
                continue
            if header is None:
                header = row
            else:
                yield dict(zip(header, row))
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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextlib.contextmanager
def _quiet_datasets():
    """No progress bars and no logged tracebacks from ``datasets`` (its failures become one
    DataError line here)."""
    import datasets

    bars_off = datasets.utils.are_progress_bars_disabled()
    level = datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        yield datasets
    finally:
        datasets.logging.set_verbosity(level)
        if not bars_off:
            datasets.enable_progress_bars()


def _files_text(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more files)"


def read_error(files: list[Path], exc: BaseException) -> DataError:
    """What is wrong with ``files`` that ``datasets`` could not read: the first bad line the
    line reader finds (file and line named), else ``datasets``' own first line."""
    for path in files:
        try:
            for _ in iter_records(path, "text"):
                pass
        except DataError as err:
            return err
    if isinstance(exc, StopIteration):  # what the json builder raises on an empty file
        return DataError(f"{_files_text(files)}: holds no records")
    return DataError(f"{_files_text(files)}: cannot be read as {builder_of(files[0])} data ({_first_line(exc)})")


def load_local(files: list[Path], *, streaming: bool = False):
    """``datasets.load_dataset(<builder>, data_files=files)`` as one ``train`` split, for files of
    one format (builder from the extension; ``.txt`` is one record per blank-line-separated
    paragraph, in a ``text`` column). Failures are one-line DataErrors naming the file."""
    builder = builder_of(files[0])
    if any(builder_of(p) != builder for p in files):
        raise DataError(f"{_files_text(files)}: mixed formats in one load")
    options = {"sample_by": "paragraph"} if builder == "text" else {}
    try:
        with _quiet_datasets() as datasets:
            return datasets.load_dataset(builder, data_files={"train": [str(p) for p in files]}, split="train",
                                         streaming=streaming, cache_dir=str(local_cache_dir()), **options)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is a data error here
        raise read_error(files, exc) from None


def column_names(ds) -> list[str] | None:
    """A dataset's columns, or None when a streamed one does not know them before reading."""
    names = getattr(ds, "column_names", None)
    return list(names) if names is not None else None


def check_fields(ds, fields: Iterable[str], where: str) -> None:
    """Every field in ``fields`` is a column of ``ds`` (when its columns are known)."""
    names = column_names(ds)
    if names is None:
        return
    for key in fields:
        if key not in names:
            raise DataError(f"{where}: record has no field {key!r} (fields: {', '.join(names) or 'none'})")


def iter_dataset(ds, *, files: list[Path] | None = None) -> Iterator[dict[str, Any]]:
    """The records of a (streamed) dataset; a read failure while streaming local ``files`` is a
    one-line DataError naming the file and line."""
    it = iter(ds)
    while True:
        try:
            record = next(it)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - streamed parse failures surface here
            if files is None:
                raise DataError(f"reading the dataset failed: {_first_line(exc)}") from None
            raise read_error(files, exc) from None
        yield record


def local_records(files: list[Path], text_field: str, *, streaming: bool = False) -> Iterator[dict[str, Any]]:
    """The records of local files in their given order, through ``datasets``: consecutive files
    of one format load together; a ``.txt`` file's paragraphs come as ``{text_field: ...}``."""
    for builder, group in itertools.groupby(files, key=builder_of):
        group = list(group)
        ds = load_local(group, streaming=streaming)
        if builder == "text":
            for record in iter_dataset(ds, files=group):
                text = record["text"].strip("\n")
                if text:
                    yield {text_field: text}
            continue
        check_fields(ds, [text_field], _files_text(group))
        yield from iter_dataset(ds, files=group)


def load_hub(dataset: str, config: str | None, split: str, *, streaming: bool = False):
    """``datasets.load_dataset`` with failures turned into a one-line DataError."""
    try:
        with _quiet_datasets() as datasets:
            return datasets.load_dataset(dataset, config, split=split, streaming=streaming)
    except Exception as exc:  # noqa: BLE001 - any hub/network/config failure is a data error here
        first = _first_line(exc)
        raise DataError(
            f"cannot load Hugging Face dataset {dataset!r} (config {config!r}, split {split!r}): {first}; "
            f"for offline use pass --data-dir (or HSEARCH_DATA_DIR)"
        ) from None
