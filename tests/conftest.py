"""Shared test set-up: offline data, caches under /tmp, small thread counts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Keep Hugging Face and Ray state out of the home directory, and never reach a hub.
_TMP = Path(tempfile.gettempdir()) / "hsearch-tests"
os.environ.setdefault("HF_HOME", str(_TMP / "hf-home"))
os.environ.setdefault("HF_DATASETS_CACHE", str(_TMP / "hf-datasets"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline copies of Emotion, MASSIVE and Wikipedia beside the checkout."""
    if not (SHARED_DATA / "emotion" / "train.jsonl").is_file():
        pytest.fail(f"offline data not found at {SHARED_DATA} (expected ../shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


# Search fixtures (a session-wide Ray cluster, PostgreSQL server): registered here so the
# cluster starts once for every tests/test_search_*.py file.
from fixtures_search import (  # noqa: E402,F401
    pg_server,
    ray_cluster,
    stop_shared_ray_cluster,
    tiny_recipe,
    two_nodes,
)


@pytest.fixture(scope="module")
def trial_cache(tmp_path_factory):
    """One tokenised-corpus cache per test module (its first trial tokenises, the rest reuse)."""
    old = os.environ.get("HSEARCH_CACHE")
    os.environ["HSEARCH_CACHE"] = str(tmp_path_factory.mktemp("hsearch-cache"))
    yield os.environ["HSEARCH_CACHE"]
    if old is None:
        os.environ.pop("HSEARCH_CACHE", None)
    else:
        os.environ["HSEARCH_CACHE"] = old


_LAST_RAY_USER = pytest.StashKey[str | None]()


def pytest_collection_modifyitems(config, items):
    users = [item.nodeid for item in items if "ray_cluster" in getattr(item, "fixturenames", ())]
    config.stash[_LAST_RAY_USER] = users[-1] if users else None


def pytest_runtest_teardown(item, nextitem):
    # Ray's daemons keep waking up; once no later test needs the cluster, stop it so that
    # the timing tests after it run on a quiet machine.
    if item.nodeid == item.config.stash.get(_LAST_RAY_USER, None):
        stop_shared_ray_cluster()
