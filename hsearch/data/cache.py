"""Where tokenised corpora and trained tokenizers are cached, and how keys are made."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """``$HSEARCH_CACHE``, else ``$HF_HOME/hsearch``, else ``~/.cache/huggingface/hsearch``."""
    if env := os.environ.get("HSEARCH_CACHE"):
        return Path(env)
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(hf_home) / "hsearch"


def cache_key(*parts: Any) -> str:
    """A stable short hash of JSON-able parts (dict order does not matter)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]
