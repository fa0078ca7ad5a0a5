"""RecordOptions and its one serializer: parse -> record_argv -> parse keeps every option of
the record parser (the same options `run` and `attach` take)."""

from __future__ import annotations

import argparse
import json
import sys
import time

import pytest
from conftest import run_wattui

from wattui.cli import build_parser
from wattui.cli.common import options_from_args
from wattui.record.options import MetricOptions, RecordOptions, record_argv

# Every option of `wattui record` set away from its default; the test below fails when the
# parser gains an option this list (and so, likely, record_argv) does not cover.
EVERY_OPTION = [
    "--store", "/tmp/wattui store",
    "--simulate", "3",
    "--period", "0.35",
    "--baseline", "1.5",
    "--name", "run -- one",
    "--tag", "a", "--tag", "b=c",
    "--group", "job 7",
    "--rapl-root", "/tmp/powercap",
    "--session-id", "20260101-000000-abcd",
    "--session-reserved",
    "--prometheus-port", "9101",
    "--prometheus-host", "0.0.0.0",
    "--log-to", "tensorboard=/tmp/tb logs",
    "--metric", "top1=Top-1: ([0-9.]+)", "--metric", "f1=F1=([0-9.]+)",
    "--accuracy-key", "top1",
    "--metrics-file", "/tmp/m.csv",
    "--no-parse-output",
    "--epochs", "90",
    "--data-fraction", "0.25",
    "--alpha", "3",
    "--beta", "7.5",
    "--sam-unit", "Wh",
    "--carbon-intensity", "420",
    "--country", "FRA",
    "--price", "0.31",
    "--currency", "EUR",
    "--pue", "1.2",
]
NOT_RECORD_OPTIONS = {"-h", "--help", "--pid", "--detach", "--no-passthrough"}


def _subparser(name: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def _parse(argv: list[str]) -> RecordOptions:
    args = build_parser().parse_args(["record", *argv, "--", "true"])
    return options_from_args(args)


def test_every_record_option_is_in_the_round_trip_list():
    for cmd in ("record", "run", "attach"):
        flags = {
            s
            for a in _subparser(cmd)._actions
            for s in a.option_strings
            if s.startswith("--")
        }
        given = {a for a in EVERY_OPTION if a.startswith("--")}
        missing = {
            f for f in flags - NOT_RECORD_OPTIONS - given - {"--no-tui", "--sam-alpha", "--sam-beta"}
        }
        assert not missing, f"{cmd}: options not covered by the round trip: {sorted(missing)}"


def test_round_trip_keeps_every_option():
    opts = _parse(EVERY_OPTION)
    # the fixture really sets everything away from the defaults
    assert opts.metrics.metric_patterns == {"top1": "Top-1: ([0-9.]+)", "f1": "F1=([0-9.]+)"}
    assert opts.metrics.parse_output is False and opts.metrics.country == "FRA"
    assert opts.prometheus_port == 9101 and opts.log_to == "tensorboard=/tmp/tb logs"
    for f in MetricOptions.__dataclass_fields__:
        assert getattr(opts.metrics, f) is not None, f
    argv = record_argv(opts)
    assert _parse(argv) == opts
    assert record_argv(_parse(argv)) == argv


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--simulate"],
        ["--alpha", "0", "--period", "1e-3", "--baseline", "0.1"],
        ["--metric", "acc=acc=([0-9.]+)", "--metric", "acc=second=([0-9.]+)"],
        ["--prometheus-port", "0"],
    ],
)
def test_round_trip_of_partial_command_lines(argv):
    opts = _parse(argv)
    assert _parse(record_argv(opts)) == opts


def test_values_that_look_like_options_stay_values():
    opts = _parse(["--name=-starts-with-a-dash", "--group=-g", "--store=--"])
    assert opts.name == "-starts-with-a-dash"
    assert _parse(record_argv(opts)) == opts


def test_without_session_leaves_out_the_reserved_id():
    opts = _parse(["--session-id", "20260101-000000-abcd", "--session-reserved", "--name", "x"])
    argv = record_argv(opts, session=False)
    assert "--session-id" not in argv and "--session-reserved" not in argv
    assert _parse(argv).name == "x" and _parse(argv).session_id is None


def test_detach_hands_metric_options_to_the_background_recorder(store, tmp_path):
    """`record --detach` starts its recorder from record_argv: the metric options reach it
    (the live screen's launch used to drop them)."""
    code = "print('Top-1: 75.0 %', flush=True)"
    r = run_wattui(
        store, "record", "--detach", "--simulate", "--name", "bg", "--tag", "t1",
        "--metric", "top1=Top-1: ([0-9.]+)", "--accuracy-key", "top1", "--sam-unit", "Wh",
        "--epochs", "3", "--country", "FRA", "--", sys.executable, "-c", code,
        WATTUI_CHANNEL_DIR=str(tmp_path / "chan"),
    )
    assert r.returncode == 0, r.stderr
    meta_path = store / "sessions" / r.stdout.strip() / "meta.json"
    deadline = time.monotonic() + 60
    meta = {}
    while time.monotonic() < deadline:
        meta = json.loads(meta_path.read_text())
        if meta.get("status") not in (None, "running"):
            break
        time.sleep(0.1)
    assert meta.get("status") == "finished", meta
    settings = meta["metric_settings"]
    assert settings["metric_patterns"] == {"top1": "Top-1: ([0-9.]+)"}
    assert settings["accuracy_key"] == "top1" and settings["sam_unit"] == "Wh"
    assert settings["total_epochs"] == 3 and settings["country"] == "FRA"
    assert meta["name"] == "bg" and meta["tags"] == ["t1"]
