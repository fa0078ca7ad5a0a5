"""Command-line conventions: exit codes (one list, in wattui.exitcodes and the README), no
screen without a terminal, --store's help, XDG paths."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import run_wattui
from pythons import ROOT, VERSIONS, runs, with_deps

from wattui import exitcodes
from wattui.cli import build_parser
from wattui.store.paths import store_root


def test_compare_without_terminal_or_format_is_a_one_line_error(store):
    p = run_wattui(store, "compare", "--store", str(ROOT / "sample_runs" / "store"), timeout=60)
    assert p.returncode == exitcodes.USAGE
    assert p.stdout == "" and len(p.stderr.strip().splitlines()) == 1
    assert "needs a terminal" in p.stderr and "--format" in p.stderr


@pytest.mark.slow
def test_launch_that_cannot_start_exits_like_a_shell(store, tmp_path):
    p = run_wattui(store, "record", "--simulate", "--", str(tmp_path / "no-such-program"))
    assert p.returncode == exitcodes.NOT_FOUND == 127, p.stderr
    assert "Traceback" not in p.stderr and "cannot start" in p.stderr
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    p = run_wattui(store, "record", "--simulate", "--", str(script))
    assert p.returncode == exitcodes.NOT_EXECUTABLE == 126, p.stderr
    # the screenless `wattui -- CMD` (no terminal) says the same
    p = run_wattui(store, "--simulate", "--", str(tmp_path / "no-such-program"))
    assert p.returncode == 127, p.stderr


def test_refused_command_exits_2(store):
    p = run_wattui(store, "rm", "20991231-000000-0000")
    assert p.returncode == exitcodes.USAGE and "Traceback" not in p.stderr


def _python_without_torch() -> str | None:
    code = "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None or u.find_spec('textual_serve') is not None)"
    for v in VERSIONS:
        py = with_deps(v)
        if py and runs(py, code):
            return py
    return None


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--headless"],
        ["estimate", "sample_runs/models.py:cnn", "--input-shape", "3,16,16", "--batch-size", "8"],
        ["serve", "--port", "0"],
    ],
    ids=["demo", "estimate", "serve"],
)
@pytest.mark.slow
def test_missing_optional_dependency_exits_4(args, tmp_path):
    """In a real environment without torch and textual-serve (a venv of scripts/pythons)."""
    py = _python_without_torch()
    if py is None:
        pytest.skip(
            "no Python with wattui's dependencies but without torch/textual-serve (scripts/pythons sets one up)"
        )
    env = dict(os.environ, PYTHONPATH=str(ROOT), WATTUI_HOME=str(tmp_path))
    p = subprocess.run(
        [py, "-m", "wattui", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == exitcodes.MISSING_DEPENDENCY, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "install" in p.stderr


def test_every_store_option_names_xdg_data_home():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "cmd"]
    with_store = []
    for name, p in sub.choices.items():
        for a in p._actions:
            if "--store" in a.option_strings:
                with_store.append(name)
                assert "$XDG_DATA_HOME" in a.help and "$WATTUI_HOME" in a.help, name
    assert {"record", "sessions", "show", "compare", "serve", "project", "run", "view"} <= set(
        with_store
    )


def test_relative_xdg_data_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("WATTUI_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert store_root() == tmp_path.home() / ".local" / "share" / "wattui"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert store_root() == tmp_path / "wattui"


def test_readme_lists_every_exit_code():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    listed = {int(n) for n in re.findall(r"^\| `(\d+)` \|", section, re.M)}
    codes = {v for k, v in vars(exitcodes).items() if k.isupper()}
    assert listed == codes


def test_version_flag():
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "--version"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and re.fullmatch(r"wattui \d+\.\d+\.\d+\S*\n", p.stdout)
