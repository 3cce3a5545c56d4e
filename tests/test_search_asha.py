"""Multi-fidelity `hsearch run` end to end (ASHA over rungs 1/9, 1/3, 1): real rung tasks on the
session's Ray cluster, SQLite; promotions, stopped layouts, state cleanup, the samplers, status."""

from __future__ import annotations

import glob
import os
import time
from collections import Counter

import optuna
import pytest
import torch
from fixtures_search import run_cli, sigkill_driver_when, study_trials, write_recipe
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.search import rungs
from hsearch.search.space import load_space

# A tiny WSD recipe for one layout's rungs (as tests/test_trial_rungs.py).
TINY_WSD = {
    "model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
    "pretrain.batch_size": 8, "pretrain.seq_len": 32, "pretrain.eval_batch_size": 32,
    "pretrain.budget": "30 steps", "pretrain.precision": "fp32", "corpus.eval_blocks": 16,
    "finetune.tasks": {}, "latency.enabled": False,
}
MULTI = {"fidelity.rungs": ["1/9", "1/3", 1], "pretrain.schedule": "wsd", "pretrain.budget": "2s"}


@pytest.fixture(scope="module")
def asha_study(repo_root, ray_cluster, shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("asha")
    recipe = write_recipe(tmp / "multi.yaml", "multi", **MULTI)
    db = tmp / "h.db"
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(recipe),
            "--storage", f"sqlite:///{db}", "--address", ray_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp / "art"), "--max-trials", "9", "--sampler", "random", "--seed", "0",
            "--budget", "30m", "--reevaluate-share", "0"]
    assert main(args) == 0
    return optuna.load_study(study_name="hbert-multi", storage=f"sqlite:///{db}"), tmp, args


def test_asha_promotes_by_rung_and_stops_the_rest(asha_study):
    study, tmp, _ = asha_study
    trials = study.get_trials()
    assert len(trials) == 9 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), \
        [(t.number, t.state, t.user_attrs.get("reason")) for t in trials]
    at = {r: [t for t in trials if rungs.key(r, "score") in t.user_attrs] for r in range(3)}
    # Every layout scored rung 0; the final top third of rung 0 went up (ASHA may also have promoted
    # a layout that led early), and the top third of those reached the top.
    assert len(at[0]) == 9
    assert len(at[1]) >= 3 and len(at[2]) >= 1
    steps = {r: {t.user_attrs[rungs.key(r, "steps")] for t in at[r]} for r in range(3)}
    assert all(len(v) >= 1 for v in steps.values())
    # Below the top each layout is scored on minus its MLM loss (cpu-small's fidelity.score), at
    # the top on the objective.
    for t in at[0]:
        assert t.user_attrs[rungs.key(0, "score")] == -t.user_attrs[rungs.key(0, "mlm_loss")]
        assert t.user_attrs[rungs.key(0, "latency_ms")] == t.user_attrs["latency_ms_predicted"]
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.user_attrs["fidelity_state"] == rungs.TOP and t.user_attrs["rung"] == 2
            assert t.values == [t.user_attrs["mean_accuracy"], t.user_attrs["latency_ms_predicted"]]
            assert t.user_attrs[rungs.key(2, "score")] == t.values[0]
            # A layout's cost is the sum over its rungs.
            total = sum(t.user_attrs[rungs.key(r, "wall_seconds")] for r in range(3))
            assert t.user_attrs["wall_seconds"] == pytest.approx(total, abs=0.01)
            assert t.user_attrs[rungs.key(1, "steps")] < t.user_attrs[rungs.key(2, "steps")] == t.user_attrs[
                "optimizer_steps"]
        else:
            assert t.user_attrs["fidelity_state"] == rungs.STOPPED
            assert t.user_attrs["stopped_at_rung"] in (0, 1) and t.values is None
            assert rungs.key(t.user_attrs["stopped_at_rung"] + 1, "score") not in t.user_attrs
    # No trunk state is left once the run has ended.
    assert glob.glob(str(tmp / "art" / "**" / "*.pt"), recursive=True) == []


def test_stopped_layouts_rank_below_the_top_for_the_samplers(asha_study, repo_root):
    study, _, _ = asha_study
    trials = study.get_trials()
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.constraints == {"hsearch_infeasible": 0.0}
        else:  # graded: top rung minus the rung reached, plus the place in that rung (< 1)
            grade = t.constraints["hsearch_infeasible"]
            assert 2 - t.user_attrs["stopped_at_rung"] <= grade < 3 - t.user_attrs["stopped_at_rung"]
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    for sampler in (optuna.samplers.TPESampler(seed=0, multivariate=True, n_startup_trials=2),
                    optuna.samplers.NSGAIISampler(seed=0, population_size=4)):
        s = optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=sampler)
        for _ in range(6):
            trial = s.ask()
            layout = space.layout(space.suggest(trial))
            assert len(str(layout).split(":")[0]) == 12
            s.tell(trial, state=TrialState.FAIL)


def test_status_shows_the_rungs_and_their_rank_correlation(asha_study, capsys):
    study, tmp, args = asha_study
    capsys.readouterr()
    assert main(["status", "--storage", args[args.index("--storage") + 1]]) == 0
    out = capsys.readouterr().out
    assert "rung 0 (0.111 of the budget): 9 layout(s)" in out
    assert "rung 2 (1 of the budget)" in out


def _trials(url: str):
    return study_trials(url, "hbert-multi")


def test_sigkill_mid_search_then_resume_keeps_every_rung(repo_root, ray_cluster, shared_data, tmp_path):
    recipe = write_recipe(tmp_path / "multi.yaml", "multi", **{**MULTI, "pretrain.budget": "4s"})
    url = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(recipe),
            "--storage", url, "--address", ray_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp_path / "art"), "--max-trials", "9", "--heartbeat", "2", "--seed", "0",
            "--sampler", "random", "--budget", "30m", "--reevaluate-share", "0"]
    def ready():  # some layouts paused with their state, and a promotion or new layout in flight
        ts = _trials(url)
        paused = [t for t in ts if t.user_attrs.get("fidelity_state") == rungs.PAUSED]
        running = [t for t in ts if t.user_attrs.get("fidelity_state") == rungs.RUNNING]
        return paused and running and len(paused) >= 2

    sigkill_driver_when(args, tmp_path, ready, timeout=300, interval=0.2, what="paused layouts and one in flight")
    # Past the grace period (2 x --heartbeat) every paused layout's last beat is stale, so the
    # second driver must adopt it, not let Optuna's stale-trial check fail it.
    time.sleep(5)
    before = {t.number: t for t in _trials(url)}
    scored = {n: {k: v for k, v in t.user_attrs.items() if k.startswith("rung0_")} for n, t in before.items()
              if rungs.key(0, "score") in t.user_attrs}
    paused = {n for n, t in before.items() if t.user_attrs.get("fidelity_state") == rungs.PAUSED}
    assert paused and all(os.path.isfile(os.path.join(before[n].user_attrs["artifacts_dir"], "state",
                                                      f"rung{before[n].user_attrs['rung']}.pt")) for n in paused)

    second = run_cli(args, cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "paused at rung" in second.stderr
    # Without a terminal the running trials' progress reaches the driver's log (the hsearch.run logger).
    assert ": pretrain step " in second.stderr and "of the budget)" in second.stderr
    trials = {t.number: t for t in _trials(url)}
    # Nothing scored before the kill was trained again: its rung-0 attributes are those of the first run.
    for n, attrs in scored.items():
        assert {k: v for k, v in trials[n].user_attrs.items() if k in attrs} == attrs
        assert trials[n].state in (TrialState.COMPLETE, TrialState.PRUNED)
    # The paused layouts were adopted, not failed: promoted by the second driver or stopped at its end.
    for n in paused:
        assert trials[n].user_attrs["fidelity_state"] in (rungs.TOP, rungs.STOPPED)
    layouts = Counter(t.user_attrs["layout"] for t in trials.values() if rungs.key(0, "score") in t.user_attrs)
    assert max(layouts.values()) == 1 and sum(layouts.values()) == 9
    assert any(t.state == TrialState.COMPLETE for t in trials.values())
    assert glob.glob(str(tmp_path / "art" / "**" / "*.pt"), recursive=True) == []


def test_a_promotion_resumes_on_another_node_exactly(two_nodes, shared_data, tmp_path, monkeypatch):
    """Rung by rung on alternating Ray nodes, the trunk state going through the artifacts path,
    ends with the weights of a straight run in this process."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from safetensors.torch import load_file

    from hsearch.search import dispatch
    from hsearch.trial import load_recipe, run_trial

    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe("cpu-small", {**TINY_WSD, "output.keep_checkpoint": True})
    straight = run_trial("hbert-v2", recipe, data_dir=shared_data, out_dir=tmp_path / "straight")
    dispatch.connect(two_nodes.address, data_dir=str(shared_data))
    try:
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        assert len(nodes) == 2
        slots = dispatch.plan_slots({"CPU": 2}, 1)
        out = str(tmp_path / "art" / "trial-0")
        ran_on = []
        for r in range(3):
            ref = dispatch.submit(slots, "hbert-v2", recipe, out, None, rung=r,
                                  resume_state=os.path.join(out, "state", f"rung{r - 1}.pt") if r else None,
                                  save_state=os.path.join(out, "state", f"rung{r}.pt") if r < 2 else None,
                                  placement={"scheduling_strategy": NodeAffinitySchedulingStrategy(nodes[r % 2],
                                                                                                   soft=False)})
            payload, reason, _ = dispatch.fetch(ref)
            assert payload is not None, reason
            assert payload["result"]["status"] == "complete", payload["result"]["error"]
            ran_on.append(payload["env"]["ray_node"])
    finally:
        dispatch.shutdown()
    assert ran_on == [nodes[0], nodes[1], nodes[0]]
    top = payload["result"]
    assert top["mlm_accuracy"] == straight.mlm_accuracy and top["optimizer_steps"] == straight.optimizer_steps
    a = load_file(os.path.join(straight.checkpoint_dir, "model.safetensors"))
    b = load_file(os.path.join(top["checkpoint_dir"], "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_progress_forwarder_sends_phase_changes_and_at_most_every_30_s():
    from hsearch.search.dispatch import Forwarder

    class Box:
        def __init__(self):
            self.items = []

        def put_nowait(self, item):
            self.items.append(item)

    now = [0.0]
    box = Box()
    fwd = Forwarder(box, {"trial": 3}, every=30.0, clock=lambda: now[0])
    for t, update in [(0, {"phase": "data", "message": "loading tasks"}), (1, {"phase": "pretrain", "step": 1}),
                      (10, {"phase": "pretrain", "step": 50}), (31.5, {"phase": "pretrain", "step": 150}),
                      (40, {"phase": "pretrain", "step": 190, "done": True}), (41, {"phase": "eval"})]:
        now[0] = t
        fwd(update)
    assert [(u.get("phase"), u.get("step")) for u in box.items] == [
        ("data", None), ("pretrain", 1), ("pretrain", 150), ("pretrain", 190), ("eval", None)]
    assert all(u["trial"] == 3 for u in box.items)
