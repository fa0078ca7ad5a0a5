"""SAM's --alpha/--beta/--sam-unit are checked the same way by every command that takes them
(they used to be three parsers: compare took ``nan`` and refused ``wh``, the listings
checked after parsing, record had its own ranges)."""

from __future__ import annotations

import pytest
from conftest import run_wattui

from wattui.cli import build_parser

# each command with the arguments it needs besides the SAM options
COMMANDS = {
    "record": ["--", "true"],
    "sessions": [],
    "show": ["x"],
    "compare": ["--format", "csv"],
    "export": ["--to", "codecarbon"],
}

BAD = [
    (["--alpha", "nan"], "SAM alpha must be between 0 and 100, not 'nan'"),
    (["--alpha", "200"], "SAM alpha must be between 0 and 100, not '200'"),
    (["--sam-alpha", "x"], "SAM alpha must be a number, not 'x'"),
    (["--beta", "0"], "SAM beta must be a positive number, not '0'"),
    (["--beta", "inf"], "SAM beta must be a positive number, not 'inf'"),
    (["--sam-unit", "kwhh"], "SAM unit must be one of kWh, Wh, J, not 'kwhh'"),
]


def _parse(cmd: str, extra: list[str]):
    tail = COMMANDS[cmd]
    if tail[:1] == ["--"]:
        return build_parser().parse_args([cmd, *extra, *tail])
    return build_parser().parse_args([cmd, *tail, *extra])


@pytest.mark.parametrize("cmd", COMMANDS)
@pytest.mark.parametrize(("extra", "message"), BAD)
def test_every_command_refuses_the_same_values_with_the_same_words(cmd, extra, message, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(cmd, extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"wattui {cmd}: error: argument ") and err.endswith(message), err


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_takes_the_same_good_values(cmd):
    args = _parse(cmd, ["--sam-alpha", "0", "--sam-beta", "2.5", "--sam-unit", "wh"])
    alpha = getattr(args, "sam_alpha", getattr(args, "alpha", None))
    beta = getattr(args, "sam_beta", getattr(args, "beta", None))
    assert (alpha, beta, args.sam_unit) == (0.0, 2.5, "Wh")


def test_a_bad_value_is_one_line_and_exit_2_from_the_real_command(store):
    r = run_wattui(store, "compare", "--format", "csv", "--alpha", "nan")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith("not 'nan'")
    assert "Traceback" not in r.stderr
