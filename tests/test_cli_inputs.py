"""The command line before any work: fast start-up without torch, and bad input refused early."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna
import pytest

from hsearch.analysis.dashboard import is_loopback
from hsearch.cli import main


def _hsearch_study(path) -> str:
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name="s", directions=["maximize", "minimize"])
    study.set_metric_names(["mean_accuracy", "latency_ms"])
    for i, (score, ms) in enumerate([(0.4, 9.0), (0.5, 12.0), (0.3, 13.0)]):
        study.add_trial(optuna.create_trial(values=[score, ms], user_attrs={"layout": f"{'SA'[i % 2] * 4}:sub",
                                                                            "origin": "sampler"}))
    return url


def test_read_only_commands_import_no_torch(tmp_path):
    url = _hsearch_study(tmp_path / "s.db")
    code = textwrap.dedent(f"""
        import sys
        from hsearch.cli import build_parser, main
        parser = build_parser()
        for argv in (["layouts"], ["status"], ["pareto"], ["run"], ["trial", "hbert-v1"], ["report", "--out", "x"],
                     ["export", "--trial", "0", "--out", "x"], ["dashboard"], ["bench", "latency"]):
            parser.parse_args(argv)
        assert main(["layouts"]) == 0
        assert main(["layouts", "SASA:sub"]) == 0
        assert main(["status", "--storage", {url!r}]) == 0
        assert main(["pareto", "--storage", {url!r}, "--format", "csv"]) == 0
        heavy = sorted(m for m in ("torch", "transformers", "ray", "datasets") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
    assert "SSSS:sub" in proc.stdout  # status and pareto really read the study


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hsearch {command}: error: "), err
    return err[0]


def test_trial_refuses_an_output_path_that_is_a_file_before_training(shared_data, tmp_path, capsys):
    blocker = tmp_path / "result-file"
    blocker.write_text("mine")
    for out, expected in ((blocker, "exists and is not a folder"), (blocker / "sub", "is a file")):
        rc = main(["trial", "hbert-v1", "--data-dir", str(shared_data), "--out", str(out)])
        assert rc == 2
        line = _one_line_error(capsys, "trial")
        assert f"--out {out}" in line and expected in line
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("budget, expected", [
    ("1K", ["--budget 1K", "too small to take one step"]),
    ("0s", ["--budget 0s", "must be positive"]),
    ("soon", ["--budget soon", "cannot parse budget"]),
])
def test_trial_budget_errors_name_the_flag(shared_data, capsys, budget, expected):
    assert main(["trial", "hbert-v1", "--data-dir", str(shared_data), "--budget", budget]) == 2
    line = _one_line_error(capsys, "trial")
    for text in expected:
        assert text in line, line


def test_export_refuses_a_latency_cap_that_is_not_a_number(tmp_path, capsys):
    url = _hsearch_study(tmp_path / "s.db")
    for cap in ("nan", "inf", "-1"):
        assert main(["export", "--storage", url, "--best-under-latency", cap, "--out", str(tmp_path / "e")]) == 2
        assert "must be a positive finite number" in _one_line_error(capsys, "export")
    assert not (tmp_path / "e").exists()


def test_loopback_hosts():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.0.2.1", "no-such-host.invalid"):
        assert not is_loopback(host), host


def test_dashboard_warns_before_serving_beyond_this_machine(tmp_path):
    url = _hsearch_study(tmp_path / "s.db")
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails, after the warning,
    # so nothing listens beyond loopback during the test.
    proc = subprocess.run([sys.executable, "-m", "hsearch.cli", "dashboard", "--storage", url,
                           "--host", "192.0.2.1", "--port", "0"], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 2, proc.stderr
    assert lines[0].startswith("hsearch dashboard: warning: --host 192.0.2.1") and "SSH tunnel" in lines[0]
    assert lines[1].startswith("hsearch dashboard: error: --host 192.0.2.1") and "cannot listen" in lines[1]
