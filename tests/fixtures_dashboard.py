"""Helpers for the tests that start the real optuna-dashboard server (`hsearch dashboard`) and
look at it over HTTP or in headless Chromium."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from hsearch.net import free_port

CHROMIUM = "/usr/bin/chromium"


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


@dataclass
class Board:
    proc: subprocess.Popen
    port: int
    url: str  # the study page it printed

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"


@contextmanager
def dashboard(*args: str) -> Iterator[Board]:
    """`hsearch dashboard ARGS --port <free>` on loopback, up once it prints its URL; stopped
    (SIGTERM, then kill) on exit. Its stderr stays readable on ``board.proc.stderr`` after."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hsearch.cli", "dashboard", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once the socket is bound
        assert line.startswith("optuna-dashboard on http://127.0.0.1:"), (
            line, proc.stderr.read() if proc.poll() is not None else "")
        yield Board(proc, port, line.split()[2])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium (Debian's, as .ci/run installs it) on a 1280x900 window, with a fresh
    profile and nothing reaching beyond the page it is given."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does")
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=20000",
        "--window-size=1280,900",
    ]
    return subprocess.run([*flags, *args], capture_output=True, text=True, timeout=180)
