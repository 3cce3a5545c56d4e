"""Output folders that hold only what hsearch wrote, and never lose what it did not.

A folder is hsearch's when it holds the command's marker file (``export.json``,
``report.json``), a JSON object whose ``files`` lists the top-level entries written.
A non-empty folder without the marker is refused, ``--force`` or not; with the marker,
``--force`` replaces the entries hsearch writes (and removes those its earlier run wrote
and this one does not), leaving every other file where it is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hsearch.errors import HsearchError


def check_target(out: Path, marker: str, *, force: bool, flag: str = "--out") -> None:
    """Refuse a folder that is not ours, or ours without ``force``."""
    if out.exists() and not out.is_dir():
        raise HsearchError(f"{flag} {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / marker).is_file():
            raise HsearchError(
                f"{flag} {out}: folder is not empty and holds no {marker}, so hsearch did not write it; "
                "refusing to write there (choose a new or empty folder)"
            )
        if not force:
            raise HsearchError(f"{flag} {out}: holds an earlier hsearch output ({marker}); "
                               "pass --force to replace the files it wrote")


def _written_before(out: Path, marker: str) -> set[str]:
    try:
        listed = json.loads((out / marker).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    # Only plain names directly inside the folder: a marker cannot point anywhere else.
    return {n for n in listed if isinstance(n, str) and n and "/" not in n and n not in (".", "..")}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def staged_folder(out: Path, marker: str, *, force: bool, flag: str = "--out") -> Iterator[Path]:
    """Yield a scratch folder beside ``out``; on success its entries move into ``out``.

    The writer must put ``marker`` into the scratch folder, with ``files`` listing what it wrote
    (:func:`write_marker`).
    """
    out = Path(out)
    check_target(out, marker, force=force, flag=flag)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise HsearchError(f"{flag} {out}: cannot write there ({exc.strerror or exc})") from exc
    try:
        yield tmp
        if not (tmp / marker).is_file():
            raise AssertionError(f"staged_folder: the writer left no {marker}")
        _readable(tmp)
        if not out.is_dir() or not any(out.iterdir()):
            if out.is_dir():
                out.rmdir()
            os.replace(tmp, out)
            return
        new = {p.name for p in tmp.iterdir()}
        for name in (_written_before(out, marker) - new) | new:
            _remove(out / name)
        for name in sorted(new - {marker}) + [marker]:  # the marker last: it vouches for the rest
            os.replace(tmp / name, out / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_marker(folder: Path, marker: str, content: dict) -> None:
    """Write ``marker`` with ``content`` plus ``files``: every top-level entry of ``folder``."""
    files = sorted({p.name for p in folder.iterdir()} | {marker})
    (folder / marker).write_text(json.dumps({**content, "files": files}, indent=2) + "\n", encoding="utf-8")


def _readable(folder: Path) -> None:
    """mkdtemp and some writers create owner-only files; give the usual umask'd modes."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
