"""The command line as a user meets it: exit codes and one-line errors."""

import subprocess
import sys

from hsearch.cli import main
from hsearch.layout import PRESETS


def test_layouts_lists_every_preset_with_its_string(capsys):
    assert main(["layouts"]) == 0
    out = capsys.readouterr().out
    for preset in PRESETS.values():
        assert preset.name in out and str(preset.layout) in out
    assert "SASASASASASA:sub" in out and "SSAAAAAAAASS:sub" in out


def test_layouts_describes_a_string(capsys):
    assert main(["layouts", "SSLA:pre", "hbert-v2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "SSLA:pre: 4 layers, 2×S, 1×A, 1×L"
    assert out[1] == "SSAAAAAAAASS:sub (preset hbert-v2): 12 layers, 4×S, 8×A"


def test_bad_layout_is_one_line_and_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "hsearch.cli", "layouts", "SAXS:sub"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert "'X' at position 2" in err[0] and "S, A, L" in err[0]
