"""Every command answers --help, and the top-level help lists them all."""

import subprocess
import sys

import pytest

COMMANDS = [
    "record", "sessions", "show", "doctor", "estimate", "calibrate", "run", "attach", "view",
    "project", "compare", "tag", "rm", "rename", "demo", "serve",
]


def _wattui(*args):
    return subprocess.run([sys.executable, "-m", "wattui", *args], capture_output=True, text=True, timeout=60)


def test_top_level_help_lists_every_command():
    r = _wattui("--help")
    assert r.returncode == 0
    for c in COMMANDS:
        if c != "run":
            assert c in r.stdout, c


@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_command_has_help(cmd):
    r = _wattui(cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage: wattui" in r.stdout
    assert "Traceback" not in r.stderr


def test_unknown_command_is_one_line():
    r = _wattui("frobnicate")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
