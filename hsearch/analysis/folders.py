"""Write an output folder atomically, replacing only a folder hsearch itself wrote before."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hsearch.errors import HsearchError


def check_target(out: Path, marker: str, *, force: bool, flag: str = "--out") -> None:
    """Refuse an existing folder unless replacing is allowed and it is ours (holds ``marker``)."""
    if out.exists() and not out.is_dir():
        raise HsearchError(f"{flag} {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise HsearchError(f"{flag} {out}: folder exists and is not empty (pass --force to replace it)")
        if not (out / marker).is_file():
            raise HsearchError(
                f"{flag} {out}: folder exists but holds no {marker}, so it was not written by hsearch; "
                "refusing to replace it"
            )


@contextmanager
def staged_folder(out: Path, marker: str, *, force: bool, flag: str = "--out") -> Iterator[Path]:
    """Yield a scratch folder beside ``out``; on success it replaces ``out`` in one rename."""
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
        _readable(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _readable(folder: Path) -> None:
    """mkdtemp and some writers create owner-only files; give the usual umask'd modes."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
