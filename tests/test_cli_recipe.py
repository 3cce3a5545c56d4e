"""``hsearch recipe show/list``, and the built-in recipes and spaces of an installed package."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from hsearch.cli import main
from hsearch.trial import load_recipe


def test_show_prints_the_resolved_recipe_its_hash_and_bases(tmp_path, capsys):
    child = tmp_path / "mine.yaml"
    child.write_text("base: cpu-small\nname: mine\npretrain: {budget: 30s}\n")
    assert main(["recipe", "show", str(child), "--set", "pretrain.lr=5e-4", "--set", "model.hidden_size=32"]) == 0
    out = capsys.readouterr().out
    recipe = load_recipe(child, {"pretrain.lr": "5e-4", "model.hidden_size": "32"})
    header = [line for line in out.splitlines() if line.startswith("#")]
    assert header[0] == f"# recipe mine: {child}"
    assert header[1].startswith("#   base: ") and header[1].endswith("cpu-small.yaml")
    assert "#   --set pretrain.lr=5e-4" in header and f"# hash: {recipe.hash}" in header
    shown = yaml.safe_load(out)
    assert "base" not in shown and shown["name"] == "mine"
    assert shown["pretrain"]["budget"] == "30s" and shown["pretrain"]["lr"] == 5e-4
    assert shown["model"]["hidden_size"] == 32 and shown["model"]["intermediate_size"] == 256  # inherited
    # What it prints is a flat recipe with the same hash.
    flat = tmp_path / "flat.yaml"
    flat.write_text(out)
    assert load_recipe(flat).hash == recipe.hash


def test_show_a_built_in_by_name(capsys):
    assert main(["recipe", "show", "gpu-short"]) == 0
    out = capsys.readouterr().out
    assert f"# hash: {load_recipe('gpu-short').hash}" in out and "#   base:" not in out
    assert yaml.safe_load(out)["name"] == "gpu-short"


def test_show_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["recipe", "show", "cpu-small", "--set", "model.hiden_size=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.hiden_size" in err[0] and err[0].startswith("hsearch recipe: error:")
    assert main(["recipe", "show", "cpu-small", "--set", "no-equals-sign"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\nname: loop\n")
    assert main(["recipe", "show", str(loop)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cycle" in err[0] and str(loop) in err[0]


def test_list_shows_the_built_ins_with_descriptions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["recipe", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == ["cpu-small", "gpu-short", "paper", "paper-init"]
    for line in lines:
        recipe = load_recipe(line.split()[0])
        assert recipe.hash in line and recipe.description in line
    # The user's own ./trials/*.yaml are listed too, marked, and a broken one does not stop the list.
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials" / "mine.yaml").write_text("base: cpu-small\nname: mine\ndescription: my corpus\n")
    (tmp_path / "trials" / "broken.yaml").write_text("name: broken\nmodel: {width: 3}\n")
    assert main(["recipe", "list"]) == 0
    out = capsys.readouterr().out
    assert "my corpus  [./trials]" in out and "broken" in out and "does not load" in out and "model.width" in out


def test_recipe_command_imports_no_torch():
    code = ("import sys; from hsearch.cli import build_parser, main; build_parser(); "
            "assert main(['recipe', 'show', 'cpu-small']) == 0; assert main(['recipe', 'list']) == 0; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_installed_package_finds_built_ins_by_name_from_another_folder(tmp_path, repo_root):
    """``pip install`` (not editable) of the package, run from a folder with no trials/ or
    search_spaces/: the built-in recipes and spaces come with the package."""
    if importlib.util.find_spec("pip") is None or importlib.util.find_spec("setuptools") is None:
        pytest.skip("no pip or setuptools in this environment")
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo_root / name, source / name)
    shutil.copytree(repo_root / "hsearch", source / "hsearch", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys, hsearch\n"
        "from hsearch.trial.recipe import load_recipe\n"
        "from hsearch.search.space import load_space\n"
        f"assert hsearch.__file__.startswith({str(target)!r}), hsearch.__file__\n"
        "r = load_recipe('cpu-small')\n"
        "print(r.path, r.hash)\n"
        "print(load_space('hbert').path)\n"
        "print(load_space('search_spaces/extended.yaml').path)\n"
        "from hsearch.cli import main\n"
        "sys.exit(main(['recipe', 'list']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{target / 'hsearch' / 'builtin' / 'trials' / 'cpu-small.yaml'} {load_recipe('cpu-small').hash}"
    assert lines[1] == str(target / "hsearch" / "builtin" / "spaces" / "hbert.yaml")
    assert lines[2] == str(target / "hsearch" / "builtin" / "spaces" / "extended.yaml")
    assert [line.split()[0] for line in lines[3:]] == ["cpu-small", "gpu-short", "paper", "paper-init"]
