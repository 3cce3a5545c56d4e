"""`hsearch dashboard`: a real optuna-dashboard server on a free port, checked over HTTP and
rendered by headless Chromium."""

from __future__ import annotations

import signal
import socket

import pytest
from analysis_study import SAMPLED
from fixtures_dashboard import chromium, dashboard, get_json
from PIL import Image

from hsearch.cli import main

pytest_plugins = ["analysis_study"]  # the session-scoped tiny_study fixture, run once


@pytest.fixture()
def board(tiny_study):
    with dashboard("--storage", tiny_study.storage, "--study", tiny_study.name) as b:
        yield b


def test_dashboard_serves_the_study_over_http(tiny_study, board):
    port, url = board.port, board.url
    assert url.startswith(f"http://127.0.0.1:{port}/dashboard/studies/")
    studies = get_json(f"{board.api}/studies")["study_summaries"]
    mine = [s for s in studies if s["study_name"] == tiny_study.name]
    assert len(mine) == 1 and mine[0]["directions"] == ["maximize", "minimize"]
    detail = get_json(f"{board.api}/studies/{mine[0]['study_id']}")
    assert detail["objective_names"] == ["mean_accuracy", "latency_ms"]  # axis labels
    number = tiny_study.numbers[SAMPLED[0]]
    trial = next(t for t in detail["trials"] if t["number"] == number)
    attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
    assert attrs["layout"] == SAMPLED[0]
    assert "latency_ms" in attrs and "mean_accuracy" in attrs
    # bound to localhost only: the machine's own network address does not answer
    try:
        other = socket.gethostbyname(socket.gethostname())
    except OSError:
        other = "127.0.0.1"
    if not other.startswith("127."):
        with socket.socket() as s:
            s.settimeout(5)
            assert s.connect_ex((other, port)) != 0
    board.proc.send_signal(signal.SIGTERM)  # a clean stop: exit code 0
    assert board.proc.wait(timeout=20) == 0


def test_dashboard_renders_in_headless_chromium(tiny_study, board, tmp_path):
    shot = tmp_path / "dashboard.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", board.url)
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as im:
        assert im.size == (1280, 900)
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 50, "the screenshot is (nearly) one colour"
        lo, hi = zip(*rgb.getextrema())
        assert min(lo) < 100 and max(hi) > 200  # dark text on a light page
    dom = chromium(tmp_path / "profile", "--dump-dom", board.url).stdout
    assert "<title>Optuna Dashboard</title>" in dom
    assert tiny_study.name in dom  # the JS app fetched and rendered the study
    assert "mean_accuracy" in dom or "Trials" in dom


def test_dashboard_bad_inputs_are_one_line_errors(tiny_study, tmp_path, capsys):
    rc = main(["dashboard", "--storage", str(tmp_path / "none.db")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "not found" in err
    rc = main(["dashboard", "--storage", tiny_study.storage, "--study", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "'nope' not found" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        rc = main(["dashboard", "--storage", tiny_study.storage, "--port", str(busy.getsockname()[1])])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "in use" in err
