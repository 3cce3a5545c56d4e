"""Output paths checked before any work starts (pure Python).

A path that cannot be written is found in a second, not after a seven-minute trial.
Access bits say little when running as root, so writability is probed with a real
temporary file in the nearest folder that exists; the probe is ours and removed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hsearch.errors import HsearchError


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``path`` is, or can become, a folder we can write in; else a one-line error naming ``flag``."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise HsearchError(f"{flag} {out}: exists and is not a folder")
    probe_dir = out
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if probe_dir.exists() and not probe_dir.is_dir():
        raise HsearchError(f"{flag} {out}: {probe_dir} is a file, so no folder can be made below it")
    try:
        fd, name = tempfile.mkstemp(prefix=".hsearch-probe-", dir=probe_dir)
    except OSError as exc:
        raise HsearchError(f"{flag} {out}: cannot write in {probe_dir} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)
    return out
