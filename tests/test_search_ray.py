"""Ray placement: one (fake) GPU per trial, trials on a second node joined with `ray start --address`."""

from __future__ import annotations

import tempfile

import optuna
import pytest
import ray
from fixtures_search import RayCluster
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.search.dispatch import Slots, plan_slots


def test_plan_slots():
    assert plan_slots({"CPU": 16, "GPU": 4}, 2) == Slots(True, 1, 4, 16)
    assert plan_slots({"CPU": 8}, 2, node_cpus=4) == Slots(False, 2, 4, 4)
    assert plan_slots({"CPU": 2}, 2).options() == {"num_cpus": 2, "num_gpus": 0, "max_retries": 0}
    from hsearch.search.dispatch import DispatchError

    with pytest.raises(DispatchError, match="asks for 4 CPUs per trial"):
        plan_slots({"CPU": 2}, 4)


@pytest.fixture(scope="module")
def gpu_cluster():
    """A CPU-only head plus a second node with two fake GPUs, both on 127.0.0.1."""
    cluster = RayCluster(tempfile.mkdtemp(prefix="hsg-", dir="/tmp"), head_cpus=1, head_gpus=0)
    try:
        cluster.add_node(num_cpus=2, num_gpus=2)
        yield cluster
    finally:
        cluster.stop()


def test_two_trials_at_once_each_with_its_own_gpu(repo_root, tiny_recipe, gpu_cluster, shared_data, tmp_path):
    db = tmp_path / "g.db"
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(tiny_recipe),
            "--storage", f"sqlite:///{db}", "--address", gpu_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp_path / "art"), "--max-trials", "2"]
    assert main(args) == 0
    trials = [t for t in optuna.load_study(study_name="hbert-tiny", storage=f"sqlite:///{db}").get_trials()
              if t.user_attrs.get("dispatched")]
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)
    a, b = trials
    # Both ran at the same time ...
    assert a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
    # ... each with one GPU of its own, charged as GPU-seconds.
    assert sorted(t.user_attrs["cuda_visible_devices"] for t in trials) == ["0", "1"]
    assert all(t.user_attrs["gpu_seconds"] > 0 and t.user_attrs["cpu_seconds"] == 0 for t in trials)
    # ... on the second node, the only one with GPUs.
    ray.init(address=gpu_cluster.address, log_to_driver=False)
    try:
        gpu_nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")}
        head = {n["NodeID"] for n in ray.nodes() if n["Alive"] and not n["Resources"].get("GPU")}
    finally:
        ray.shutdown()
    assert len(gpu_nodes) == 1 and head
    assert {t.user_attrs["ray_node"] for t in trials} == gpu_nodes
