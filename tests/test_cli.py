"""Every command answers --help, and the top-level help lists them all."""

import subprocess
import sys

import pytest

COMMANDS = [
    "record", "sessions", "show", "doctor", "estimate", "calibrate", "run", "attach", "view",
    "project", "compare", "tag", "rm", "rename", "demo", "serve", "export",
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


def test_port_numbers_are_checked():
    import argparse

    from wattui.argtypes import port_number

    assert port_number("0") == 0 and port_number("65535") == 65535
    for bad in ("65536", "-1", "80.0", "http"):
        with pytest.raises(argparse.ArgumentTypeError):
            port_number(bad)


def test_commands_come_from_an_explicit_list_of_modules():
    """Every module of wattui/cli/ but the shared ones is listed, each with add_parser and run,
    and `wattui --help` shows their commands in the listed order."""
    from pathlib import Path

    import wattui.cli as cli

    here = {p.stem for p in Path(cli.__file__).parent.glob("*.py")} - {"__init__", "common"}
    listed = {m.__name__.rsplit(".", 1)[-1] for m in cli.COMMANDS}
    assert listed == here
    assert all(callable(m.add_parser) for m in cli.COMMANDS)
    # estimate and calibrate parse their own argv (run_argv); every other module has run(args)
    assert all(callable(getattr(m, "run", None) or m.run_argv) for m in cli.COMMANDS)
    (sub,) = [a for a in cli.build_parser()._actions if a.dest == "cmd"]
    assert list(sub.choices) == [
        "record", "sessions", "show", "doctor", "estimate", "calibrate", "run", "attach",
        "view", "project", "compare", "tag", "rm", "rename", "demo", "serve", "export",
    ]
    _, owners = cli._build()
    assert owners["rm"].__name__ == "wattui.cli.compare" and owners["view"].__name__ == "wattui.cli.watch"


def test_command_modules_never_import_the_cli_back():
    """A command module imports the shared options (wattui.cli.common) or a sibling's public
    function, never the package (the parser and main) it is listed in."""
    import ast
    from pathlib import Path

    import wattui.cli as cli

    for path in Path(cli.__file__).parent.glob("*.py"):
        if path.stem == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert name != "wattui.cli", (path.name, name)
