"""The recipes and search spaces that ship inside the package (pure Python, no imports of ours).

``hsearch/builtin/trials/*.yaml`` and ``hsearch/builtin/spaces/*.yaml`` are package data, so
``--recipe cpu-small`` and ``--space hbert`` work from an installed package and any folder.
A checkout keeps ``trials/`` and ``search_spaces/`` as symlinks to these folders, so paths
such as ``trials/cpu-small.yaml`` keep working there.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from importlib import resources
from pathlib import Path

KINDS = ("trials", "spaces")
SUFFIXES = (".yaml", ".yml")
_extracted: dict[str, Path] = {}


def builtin_dir(kind: str) -> Path:
    """The folder of built-in ``kind`` files ("trials" or "spaces"), found through
    :mod:`importlib.resources`, not relative to a source checkout."""
    if kind not in KINDS:
        raise ValueError(f"unknown built-in kind {kind!r} (allowed: {', '.join(KINDS)})")
    ref = resources.files(__name__).joinpath(kind)
    if isinstance(ref, Path):
        return ref
    # A package that is not plain files (a zip import): copy the folder out once per process.
    if kind not in _extracted:
        target = Path(tempfile.mkdtemp(prefix=f"hsearch-builtin-{kind}-"))
        atexit.register(shutil.rmtree, target, True)
        if ref.is_dir():
            for item in ref.iterdir():
                if item.is_file():
                    (target / item.name).write_bytes(item.read_bytes())
        _extracted[kind] = target
    return _extracted[kind]


def builtin_files(kind: str) -> dict[str, Path]:
    """Built-in ``kind`` files by name (file stem), sorted by name."""
    folder = builtin_dir(kind)
    if not folder.is_dir():
        return {}
    found = {p.stem: p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()}
    return dict(sorted(found.items()))


def builtin_file(kind: str, name: str) -> Path | None:
    """The built-in ``kind`` file called ``name`` (with or without ``.yaml``), or None."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix in SUFFIXES else name
    if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
        return None
    return builtin_files(kind).get(stem)
