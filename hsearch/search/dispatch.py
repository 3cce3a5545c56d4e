"""Ray: start or join a cluster and run one trial per task.

One GPU per trial where the cluster has GPUs (concurrency = GPUs), otherwise CPU
trials with the CPUs the recipe asks for. ``max_retries=0``: whether a failed trial is
tried again is the study's decision, not Ray's.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from hsearch.errors import HsearchError
from hsearch.net import free_port

# Environment a worker needs to find the same data and stay offline when the driver is.
PASS_ENV = ("HSEARCH_DATA_DIR", "HSEARCH_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
LOCAL_TEMP_DIR = "/tmp/hsearch-ray"  # short: Ray's unix socket paths must stay < 108 bytes
OBJECT_STORE_BYTES = 256 * 1024**2  # results are small JSON; keep the store small
PROGRESS_EVERY_S = 30.0  # a running trial forwards a pretraining update at most this often


class DispatchError(HsearchError, RuntimeError):
    """Ray could not be started or reached, or cannot run a trial."""


def _check_reachable(address: str) -> None:
    # Fail in a second instead of Ray's long connection retries.
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DispatchError(f"--address {address!r}: expected auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise DispatchError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc})") from None


class RayNode:
    """A Ray node started with ``ray start --block`` in its own process group.

    Fixed agent ports matter: with dynamic ones the raylet gives its agents only 15 s
    (hard-coded in Ray 2.60) to report their ports, which a busy machine can miss.
    ``watch_pid``: the node's group is killed when that process dies, so a driver
    killed with SIGKILL does not leave a local cluster behind.
    """

    def __init__(self, *, head_address: str | None = None, num_cpus: float | None = None,
                 num_gpus: float | None = None, temp_dir: str = LOCAL_TEMP_DIR,
                 watch_pid: int | None = None, env: dict[str, str] | None = None) -> None:
        import shutil
        import subprocess
        import sys

        ray_bin = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
        args = [ray_bin, "start", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1",
                "--dashboard-agent-grpc-port", str(free_port()),
                "--dashboard-agent-listen-port", str(free_port()),
                "--runtime-env-agent-port", str(free_port()),
                "--metrics-export-port", str(free_port()),
                "--object-store-memory", str(OBJECT_STORE_BYTES)]
        if head_address is None:
            self.port = free_port()
            args += ["--head", "--port", str(self.port), "--include-dashboard", "false",
                     "--dashboard-host", "127.0.0.1", "--dashboard-port", str(free_port()),
                     "--ray-client-server-port", str(free_port()), "--temp-dir", temp_dir]
            self.address = f"127.0.0.1:{self.port}"
        else:
            args += ["--address", head_address]
            self.address = head_address
        if num_cpus is not None:
            args += ["--num-cpus", str(num_cpus)]
        if num_gpus is not None:
            args += ["--num-gpus", str(num_gpus)]
        cmd = " ".join(_quote(a) for a in args)
        if watch_pid is not None:
            cmd = f"{cmd} & while kill -0 {watch_pid} 2>/dev/null; do sleep 1; done; kill -KILL 0"
        full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", **(env or {})}
        os.makedirs(temp_dir, exist_ok=True)
        self.log_path = os.path.join(temp_dir, f"ray-start-{os.getpid()}-{free_port()}.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["sh", "-c", cmd], stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=full_env)

    def wait_for_gcs(self, timeout: float = 180) -> None:
        host, _, port = self.address.rpartition(":")
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise DispatchError(f"ray start exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        raise DispatchError(f"Ray did not start within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        import signal

        # The group outlives the ``ray start`` process, so signal the group itself.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            if sig == signal.SIGTERM:
                time.sleep(2)
        try:
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - the group is already killed
            pass
        self._log.close()


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


_LOCAL: RayNode | None = None


def connect(address: str | None, *, data_dir: str | None = None, num_cpus: int | None = None) -> dict[str, float]:
    """Join ``address`` (``auto`` or HOST:PORT) or start a local node; returns the resources."""
    global _LOCAL
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    env = {k: os.environ[k] for k in PASS_ENV if os.environ.get(k)}
    if data_dir:
        env["HSEARCH_DATA_DIR"] = str(os.path.abspath(data_dir))
    kwargs: dict[str, Any] = dict(
        runtime_env={"env_vars": env} if env else None,
        log_to_driver=False,
        configure_logging=False,
        namespace="hsearch",
    )
    if ray.is_initialized():
        ray.shutdown()
    if not address:
        _LOCAL = RayNode(num_cpus=num_cpus or os.cpu_count(), watch_pid=os.getpid())
        try:
            _LOCAL.wait_for_gcs()
        except DispatchError:
            shutdown()
            raise
        address = _LOCAL.address
    elif address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        shutdown()
        raise DispatchError(f"--address {address}: cannot join a Ray cluster: {str(exc).splitlines()[0]}") from None
    return dict(ray.cluster_resources())


def shutdown() -> None:
    """Disconnect; stop the local node if this process started one."""
    global _LOCAL
    import ray

    if ray.is_initialized():
        ray.shutdown()
    if _LOCAL is not None:
        _LOCAL.stop()
        _LOCAL = None


@dataclass(frozen=True)
class Slots:
    """How trials are placed: per-task resources and how many fit at once."""

    use_gpu: bool
    cpus_per_trial: float
    concurrency: int
    node_cpus: float = 1.0  # CPUs of the largest node: what "a whole node" asks for

    def options(self) -> dict[str, Any]:
        if self.use_gpu:
            return {"num_gpus": 1, "num_cpus": 1, "max_retries": 0}
        return {"num_cpus": self.cpus_per_trial, "num_gpus": 0, "max_retries": 0}


def plan_slots(resources: dict[str, float], recipe_cpus: float, node_cpus: float | None = None) -> Slots:
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 0))
    node_cpus = node_cpus or cpus
    if gpus >= 1:
        return Slots(True, 1, gpus, node_cpus)
    if recipe_cpus > cpus:
        raise DispatchError(
            f"the recipe asks for {recipe_cpus:g} CPUs per trial (resources.cpus) but the Ray cluster has {cpus:g}"
        )
    return Slots(False, recipe_cpus, max(1, int(cpus // recipe_cpus)), node_cpus)


def largest_node_cpus() -> float:
    import ray

    return max((float(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1.0)


class Forwarder:
    """A trial's progress callback that sends the driver a line's worth on every phase change and
    at most every ``every`` seconds within a phase (what a log file can hold for a 24-hour search)."""

    def __init__(self, queue, tag: dict[str, Any], every: float = PROGRESS_EVERY_S, clock=time.monotonic) -> None:
        self.queue, self.tag, self.every, self.clock = queue, tag, every, clock
        self.phase: str | None = None
        self.last = -float("inf")

    def __call__(self, update: dict[str, Any]) -> None:
        phase = update.get("phase")
        now = self.clock()
        if phase == self.phase and now - self.last < self.every and not update.get("done"):
            return
        self.phase, self.last = phase, now
        keep = ("phase", "step", "loss", "budget_fraction", "rung", "message", "task", "seed", "status")
        try:
            self.queue.put_nowait({**self.tag, **{k: update[k] for k in keep if k in update}})
        except Exception:  # noqa: BLE001 - a full or lost queue must never stop a trial
            pass


def progress_queue():
    """The queue running trials forward their progress through (a Ray actor holding no CPU)."""
    from ray.util.queue import Queue

    return Queue(maxsize=10_000, actor_options={"num_cpus": 0})


def drain(queue) -> list[dict[str, Any]]:
    """Every update waiting in ``queue`` (none when it is empty or gone)."""
    try:
        n = queue.size()
        return queue.get_nowait_batch(n) if n else []
    except Exception:  # noqa: BLE001 - progress is best effort
        return []


def _trial_task(layout: str, recipe, out_dir: str | None, deadline: float | None,
                cost_table: str | None = None, latency_repeats: int = 1, rung: int | None = None,
                resume_state: str | None = None, save_state: str | None = None,
                progress_to=None, tag: dict[str, Any] | None = None, upload: tuple | None = None) -> dict[str, Any]:
    """Runs in a Ray worker: one trial (multi-fidelity: one rung of it, resumed from and saving
    trunk state at paths every node sees), plus where and on what it ran."""
    import ray

    from hsearch.cost.table import CostTable
    from hsearch.trial import run_trial

    start = time.time()
    cpu0 = time.process_time()
    should_stop = (lambda: time.time() >= deadline) if deadline else None
    table = CostTable.from_json(cost_table) if cost_table else None
    progress = Forwarder(progress_to, tag or {}) if progress_to is not None else None
    result = run_trial(layout, recipe, out_dir=out_dir, should_stop=should_stop, cost_table=table,
                       latency_repeats=latency_repeats, rung=rung, resume_state=resume_state, save_state=save_state,
                       progress=progress)
    ctx = ray.get_runtime_context()
    env: dict[str, Any] = {}
    if upload is not None and out_dir is not None:  # (store URL, storage URL, study, trial number)
        from hsearch.search.artifacts import upload_trial

        try:
            env["artifacts"] = upload_trial(*upload, out_dir)
        except Exception as exc:  # noqa: BLE001 - the trial's result stands; the driver records why
            env["artifacts_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
    return {
        "result": result.to_dict(),
        "env": {**env,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "ray_node": ctx.get_node_id(),
            "hostname": socket.gethostname(),
            "worker_pid": os.getpid(),
            "task_seconds": time.time() - start,
            "task_cpu_seconds": time.process_time() - cpu0,
        },
    }


def _cost_task(recipe, num_layers: int, variants: list[str], mixed_norms: bool, known: str | None) -> str:
    """Runs in a Ray worker holding a whole node: the recipe's cost table, as JSON.

    ``known``: a table the study already holds; it is kept when it was measured for the same
    machine kind and recipe shape (same key), so a resumed search charges trials as before.
    """
    from hsearch.cost.table import CostTable
    from hsearch.trial.costing import cost_table

    table = cost_table(recipe, num_layers=num_layers, variants=variants, mixed_norms=mixed_norms,
                       known=CostTable.from_json(known) if known else None)
    return table.to_json()


_REMOTE: dict[str, Any] = {}


def _remote(fn):
    import ray

    if fn.__name__ not in _REMOTE:
        _REMOTE[fn.__name__] = ray.remote(fn)
    return _REMOTE[fn.__name__]


def submit(slots: Slots, layout: str, recipe, out_dir: str | None, deadline: float | None,
           cost_table: str | None = None, *, rung: int | None = None, resume_state: str | None = None,
           save_state: str | None = None, placement: dict[str, Any] | None = None, progress_to=None,
           tag: dict[str, Any] | None = None, upload: tuple | None = None):
    """Start one trial task (or one rung of it); returns its ObjectRef. ``placement``: extra Ray
    options, e.g. a scheduling strategy; ``progress_to``: a :func:`progress_queue` the task
    forwards its progress to, each update carrying ``tag``; ``upload``: (artifact store URL, storage
    URL, study name, trial number) to upload the trial's files to when it ends."""
    return _remote(_trial_task).options(**slots.options(), **(placement or {})).remote(
        layout, recipe, out_dir, deadline, cost_table, 1, rung, resume_state, save_state, progress_to, tag, upload)


def whole_node(slots: Slots) -> dict[str, Any]:
    """Ray options of a task that holds a whole node: all the CPUs of the largest node (and, on a
    GPU cluster, a GPU to train on), so no trial shares the machine while the task times."""
    return {"num_cpus": slots.node_cpus, "num_gpus": 1 if slots.use_gpu else 0, "max_retries": 0}


def whole_nodes(slots: Slots) -> int:
    """How many whole-node tasks can run at once: alive nodes with the largest node's CPUs."""
    import ray

    count = 0
    for n in ray.nodes():
        res = n.get("Resources", {}) if n.get("Alive") else {}
        if float(res.get("CPU", 0)) >= slots.node_cpus and (not slots.use_gpu or float(res.get("GPU", 0)) >= 1):
            count += 1
    return max(1, count)


def submit_whole_node(slots: Slots, layout: str, recipe, deadline: float | None, cost_table: str | None,
                      latency_repeats: int):
    """Start one trial on a task that holds a whole node (re-evaluation: its latency is timed with
    nothing else on the machine); returns its ObjectRef. No artifacts are written."""
    return _remote(_trial_task).options(**whole_node(slots)).remote(layout, recipe, None, deadline, cost_table,
                                                                    latency_repeats)


def measure_cost(slots: Slots, recipe, num_layers: int, variants: list[str], mixed_norms: bool,
                 known: str | None) -> str:
    """Measure (or load) ``recipe``'s cost table on a worker that holds a whole node, so no
    trial shares the machine while it times; blocks until done."""
    import ray

    try:
        return ray.get(_remote(_cost_task).options(**whole_node(slots)).remote(recipe, num_layers, variants,
                                                                             mixed_norms, known))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None) or exc
        raise DispatchError(f"measuring the cost table failed: {type(cause).__name__}: "
                            f"{(str(cause).strip().splitlines() or [''])[0][:300]}") from None


def wait(refs: list, timeout: float) -> list:
    import ray

    if not refs:
        time.sleep(timeout)
        return []
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    return ready


def fetch(ref) -> tuple[dict[str, Any] | None, str | None, str]:
    """(payload, None, "") on success, else (None, reason, outcome) for a task that failed."""
    import ray
    from ray import exceptions as rex

    try:
        return ray.get(ref), None, ""
    except rex.TaskCancelledError:
        return None, "cancelled: task cancelled", "cancelled"
    except rex.OutOfMemoryError as exc:
        return None, f"oom: Ray killed the worker for memory: {_first_line(exc)}", "oom"
    except (rex.WorkerCrashedError, rex.NodeDiedError, rex.LocalRayletDiedError) as exc:
        return None, f"worker died: {type(exc).__name__}: {_first_line(exc)}", "error"
    except rex.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if cause is None:
            return None, f"raised: {_first_line(exc)}", "error"
        text = (str(cause).strip().splitlines() or [""])[0][:500]
        return None, f"raised {type(cause).__name__}: {text}", "error"
    except rex.RayError as exc:
        return None, f"ray error {type(exc).__name__}: {_first_line(exc)}", "error"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # RayTaskError text starts with a traceback banner; the cause line is the last one.
    return (lines[-1] if lines else type(exc).__name__)[:500]


def cancel(ref) -> None:
    import ray

    try:
        ray.cancel(ref, force=True)
    except Exception:  # already finished or its worker is gone
        pass


def hardware_summary(resources: dict[str, float]) -> dict[str, Any]:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {
        "nodes": len(nodes),
        "cpus": resources.get("CPU", 0),
        "gpus": resources.get("GPU", 0),
        "node_ips": sorted({n.get("NodeManagerAddress", "") for n in nodes}),
    }
