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


def test_number_options_accept_what_they_should_and_nothing_else():
    import argparse

    from wattui.argtypes import nonneg_float, positive_float, positive_int

    assert nonneg_float("0.00") == 0.0  # --baseline 0.00 once failed: only "0" passed
    assert positive_float("0.05") == 0.05 and positive_int("3") == 3
    for fn, bad in ((nonneg_float, "-1"), (positive_float, "0"), (positive_float, "nan"),
                    (positive_float, "inf"), (positive_int, "0"), (positive_int, "1.5")):
        with pytest.raises(argparse.ArgumentTypeError):
            fn(bad)
