"""Reading a YAML input file with errors a user can act on (pure Python + PyYAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hsearch.errors import HsearchError


def load_yaml(path: Path, error: type[HsearchError], what: str) -> Any:
    """``path`` parsed; else one ``error`` line naming the file (and the line, for bad YAML)."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise error(f"{path}: not valid YAML{at}: {first}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
