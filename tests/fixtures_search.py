"""Fixtures for the search tests: a tiny recipe, a Ray cluster, a PostgreSQL server.

Registered in conftest.py so the session-scoped Ray cluster is started once for all
search test files. Nothing here is skipped: missing PostgreSQL binaries fail loudly.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from hsearch.net import free_port  # noqa: F401  (re-exported to the search tests)

# A whole trial in a few seconds on one core: tiny width, small fine-tuning sets,
# three latency runs, 1 s of pretraining. Layouts keep their 12 layers.
TINY = {
    "model.hidden_size": 32,
    "model.num_attention_heads": 2,
    "model.intermediate_size": 64,
    "pretrain.budget": "1s",
    "corpus.max_tokens": 50000,
    "corpus.eval_blocks": 16,
    "finetune.tasks.emotion.max_train_examples": 64,
    "finetune.tasks.emotion.epochs": 1,
    "finetune.tasks.massive.max_train_examples": 64,
    "finetune.tasks.massive.epochs": 1,
    "finetune.max_eval_examples": 64,
    "latency.runs": 3,
    "latency.warmup": 1,
    "resources.cpus": 1,
    # One fidelity, as most search tests assume; the multi-fidelity tests set their rungs.
    "fidelity.rungs": [1],
    "pretrain.schedule": "linear",
}


def write_recipe(path: Path, name: str, **extra) -> Path:
    """cpu-small shrunk by TINY (plus ``extra`` dotted overrides) written as a recipe file."""
    from hsearch.trial import load_recipe

    recipe = load_recipe("cpu-small", {**TINY, **extra})
    data = recipe.to_dict()
    data["name"] = name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_recipe(tmp_path_factory) -> Path:
    return write_recipe(tmp_path_factory.mktemp("recipes") / "tiny.yaml", "tiny")


def _wait_nodes(address: str, count: int, timeout: float = 240) -> None:
    """Block until ``count`` nodes are alive in the cluster (checked from a subprocess)."""
    code = (
        "import ray,sys,time\n"
        f"ray.init(address={address!r}, log_to_driver=False)\n"
        f"end=time.time()+{timeout}\n"
        f"while sum(n['Alive'] for n in ray.nodes())<{count}:\n"
        "    time.sleep(1)\n"
        "    if time.time()>end: sys.exit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=timeout + 60)


class RayCluster:
    """A head node (and optional worker nodes) started with ``ray start --block``."""

    def __init__(self, temp_dir: str, head_cpus: int, head_gpus: int = 0) -> None:
        from hsearch.search.dispatch import RayNode

        self.temp_dir = temp_dir
        self.nodes = [RayNode(num_cpus=head_cpus, num_gpus=head_gpus, temp_dir=temp_dir)]
        self.address = self.nodes[0].address
        try:
            self.nodes[0].wait_for_gcs()
            _wait_nodes(self.address, 1)
        except BaseException:
            self.stop()
            raise

    def add_node(self, num_cpus: int, num_gpus: int) -> None:
        from hsearch.search.dispatch import RayNode

        self.nodes.append(RayNode(head_address=self.address, num_cpus=num_cpus, num_gpus=num_gpus,
                                  temp_dir=self.temp_dir))
        _wait_nodes(self.address, len(self.nodes))

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


_SHARED_CLUSTERS: list[RayCluster] = []


@pytest.fixture(scope="session")
def ray_cluster():
    """One CPU-only Ray cluster (2 CPUs) shared by the search tests; drivers join it."""
    cluster = RayCluster(tempfile.mkdtemp(prefix="hsr-", dir="/tmp"), head_cpus=2)
    _SHARED_CLUSTERS.append(cluster)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def two_nodes():
    """A head and a worker node of one CPU each (both on 127.0.0.1): a trial per node at a time."""
    cluster = RayCluster(tempfile.mkdtemp(prefix="hs2-", dir="/tmp"), head_cpus=1)
    try:
        cluster.add_node(num_cpus=1, num_gpus=0)
        yield cluster
    finally:
        cluster.stop()


def stop_shared_ray_cluster() -> None:
    """Stop the session's cluster early (stopping twice is harmless)."""
    while _SHARED_CLUSTERS:
        _SHARED_CLUSTERS.pop().stop()


# -- PostgreSQL --------------------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(install Debian's postgresql package: apt-get install -y postgresql)"
        )
    return Path(found[-1]).parent


class PgServer:
    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="hsearch-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root: use the postgres account (or nobody).
            user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.root, user)
            self.prefix = ["runuser", "-u", user, "--"]
        self._run(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=50"
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", opts, "-w", "-t", "120", "start"])
        self._run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "hsearch"])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/hsearch"

    def _run(self, cmd: list[str]) -> None:
        cmd = self.prefix + [str(self.bin / cmd[0])] + cmd[1:]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=self.root)
        if proc.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr or proc.stdout}\n{log[-2000:]}")

    def stop(self) -> None:
        try:
            self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def pg_server():
    server = PgServer()
    yield server
    server.stop()


# -- running the CLI ---------------------------------------------------------------------


def hsearch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hsearch.cli", *args]


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(hsearch_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def study_trials(url: str, name: str) -> list:
    """The study's trials, or none while the driver has not created it yet."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=url).get_trials()
    except KeyError:
        return []


def sigkill_driver_when(args: list[str], cwd: Path, ready, *, timeout: float, interval: float, what: str) -> None:
    """Run ``hsearch ARGS`` (its output in ``cwd/first.log``) and SIGKILL it once ``ready()``
    holds, as a crash or an OOM kill would; the process is gone when this returns."""
    import signal

    with open(cwd / "first.log", "w") as log:
        driver = subprocess.Popen(hsearch_cmd(*args), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(ready, timeout=timeout, interval=interval, what=what)
            os.kill(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
