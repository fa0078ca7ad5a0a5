"""The comparison table without the UI: loading, SAM under any parameters, Pareto front,
filtering, sorting, exports, the CLI, and that no Textual is imported."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import polars as pl
import pytest
from compare_fixtures import T0, make_corrupt, make_demo_store, make_session

from wattui.analysis import table as cmp
from wattui.cli import main
from wattui.metrics.sam import sam


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_demo_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def table(store):
    return cmp.load_table(store)


def names(df) -> list[str]:
    return df["name"].to_list()


def test_every_readable_session_is_a_row_corrupt_ones_are_problems(table):
    assert table.frame.height == 8
    assert len(table.problems) == 1 and "20261101-000000-dead" in table.problems[0]
    st = dict(zip(table.frame["name"], table.frame["status"]))
    assert st["resnet50-long"] == "interrupted"
    assert st["diverged"] == "failed"
    assert st["resnet50"] == "finished"


def test_row_fields(table):
    r = table.frame.filter(pl.col("name") == "clip-vit-l").to_dicts()[0]
    assert r["gpu_count"] == 4 and r["gpus"] == "4× H100 80GB HBM3"
    assert r["method"] == "counter" and r["simulated"] is False
    assert r["host"] == "lab-h100"
    assert r["accuracy"] == pytest.approx(0.83) and r["best_accuracy"] == pytest.approx(0.835)
    assert r["start"] == "2026-11-05 12:00"  # UTC
    assert r["mean_w"] == pytest.approx(r["energy_j"] / r["duration_s"])
    assert 300 < r["peak_w"] <= 350
    sim = table.frame.filter(pl.col("name") == "resnet50").to_dicts()[0]
    assert sim["simulated"] and sim["method"] == "simulated"
    # projected energy only for unfinished runs
    inter = table.frame.filter(pl.col("status") == "interrupted").to_dicts()[0]
    assert inter["projected_energy_j"] == pytest.approx(4.6e7)


def test_name_falls_back_to_model_then_command(tmp_path):
    make_session(tmp_path, "20261101-000001-b001", model="gpt-tiny", accs=(0.5,))
    make_session(tmp_path, "20261101-000002-b002", command=("python", "x.py"), accs=(0.5,))
    t = cmp.load_table(tmp_path)
    assert sorted(names(t.frame)) == ["gpt-tiny", "python x.py"]


def test_sam_is_recomputed_under_params_and_matches_metrics_module(table):
    for p in (cmp.SamParams(), cmp.SamParams(2, 1, "kWh"), cmp.SamParams(5, 5, "Wh")):
        t = table.with_params(p)
        for r in t.frame.to_dicts():
            want = sam(r["accuracy"], r["energy_j"], p.alpha, p.beta, p.unit).value
            assert r["sam"] == (pytest.approx(want) if want is not None else None)


def test_alpha_change_reranks(table):
    # Default (alpha=5, kWh): mobilenet leads. With alpha=0 accuracy no longer matters and
    # the least energy above 1 kWh wins; in Wh all sessions are defined.
    base = table.frame.sort("sam_rank", nulls_last=True)
    assert base["name"][0] == "mobilenet-v2"
    hi = table.with_params(cmp.SamParams(20, 5, "kWh")).frame.sort("sam_rank", nulls_last=True)
    assert hi["name"][0] != "mobilenet-v2" or hi["sam"][0] != base["sam"][0]
    wh = table.with_params(cmp.SamParams(5, 5, "Wh")).frame
    assert wh["sam"].null_count() == 1  # only the session without accuracy
    ranks = wh.sort("sam_rank", nulls_last=True)["name"].to_list()
    assert ranks != base["name"].to_list()


def test_beta_scales_but_never_reranks(table):
    a = table.with_params(cmp.SamParams(5, 1, "kWh")).frame
    b = table.with_params(cmp.SamParams(5, 10, "kWh")).frame
    assert a["sam_rank"].to_list() == b["sam_rank"].to_list()
    pairs = [(x, y) for x, y in zip(a["sam"], b["sam"]) if x is not None]
    assert pairs and all(y == pytest.approx(10 * x) for x, y in pairs)


def test_bad_params_are_refused(table):
    with pytest.raises(ValueError):
        table.with_params(cmp.SamParams(5, 0, "kWh"))
    with pytest.raises(ValueError):
        table.with_params(cmp.SamParams(5, 5, "MWh"))


def test_pareto_front():
    e = [1.0, 2.0, 3.0, 4.0, None, 2.0]
    a = [0.5, 0.7, 0.6, 0.9, 0.99, 0.7]
    assert cmp.pareto_front(e, a) == {0, 1, 3}
    assert cmp.pareto_front([], []) == set()
    assert cmp.pareto_front([5.0], [None]) == set()


def test_pareto_in_table(table):
    front = set(table.frame.filter(pl.col("pareto"))["name"])
    assert "vit-h14" in front  # the most accurate
    assert "smoke-test" in front  # the least energy
    assert "resnet50" not in front  # efficientnet-b0: less energy, more accuracy
    assert "diverged" not in front  # no accuracy


@pytest.mark.parametrize(
    "text,expected",
    [
        ("tag:paper", {"resnet50", "mobilenet-v2", "vit-h14", "efficientnet-b0"}),
        ("tag:PAPER -tag:vit", {"resnet50", "mobilenet-v2", "efficientnet-b0"}),
        ("status:interrupted", {"resnet50-long"}),
        ("status:fail", {"diverged"}),
        ("resnet", {"resnet50", "resnet50-long"}),
        ("clip.py", {"clip-vit-l"}),
        ("host:h100", {"clip-vit-l"}),
        ("sim:no", {"clip-vit-l"}),
        ("date:2026-11-03", {"vit-h14"}),
        ("since:2026-11-07", {"resnet50-long", "diverged"}),
        ("until:2026-11-01", {"resnet50"}),
        ("since:2026-11-02 until:2026-11-03", {"mobilenet-v2", "vit-h14"}),
        ("date:2026-11", None),
        ("method:counter", {"clip-vit-l"}),
        ("nothing-matches-this", set()),
        ("", None),
    ],
)
def test_filter(table, text, expected):
    got = set(names(cmp.filter_frame(table.frame, text)))
    assert got == (set(names(table.frame)) if expected is None else expected)


def test_bad_date_filter(table):
    with pytest.raises(cmp.FilterError):
        cmp.filter_frame(table.frame, "date:yesterday")


def test_sort_any_column_nulls_last(table):
    for c in cmp.COLUMNS:
        df = cmp.sort_frame(table.frame, c.key)
        assert df.height == table.frame.height
    df = cmp.sort_frame(table.frame, "energy", descending=True)
    e = df["energy_j"].to_list()
    assert e == sorted(e, reverse=True)
    df = cmp.sort_frame(table.frame, "-sam")
    s = df["sam"].to_list()
    defined = [x for x in s if x is not None]
    assert defined == sorted(defined, reverse=True) and s[-1] is None
    assert cmp.sort_frame(table.frame, "Start (UTC)")["name"][0] == "resnet50"
    with pytest.raises(ValueError):
        cmp.resolve_sort("nope")


def test_export_md_states_params_and_marks_simulated(table):
    p = cmp.SamParams(3, 2, "Wh")
    t = table.with_params(p)
    out = cmp.export(t.view(sort="-sam"), "md", p)
    assert "alpha=3, beta=2" in out and "energy in Wh" in out
    assert "SAM (α=3 β=2 Wh)" in out
    assert "resnet50 [SIM]" in out and "clip-vit-l |" in out
    assert "SIMULATED" in out
    lines = [x for x in out.splitlines() if x.startswith("|")]
    assert len(lines) == 2 + 8
    assert all(x.count("|") == lines[0].count("|") for x in lines)


def test_export_csv_parses_and_carries_params(table):
    out = cmp.export(table.view(sort="name"), "csv", table.params)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 8
    r = {x["name"]: x for x in rows}
    assert r["resnet50"]["sam_alpha"] == "5.0" and r["resnet50"]["sam_unit"] == "kWh"
    assert r["resnet50"]["simulated"] == "True" and r["clip-vit-l"]["simulated"] == "False"
    assert r["clip-vit-l"]["energy_method"] == "counter"
    assert r["resnet50"]["tags"] == "paper;cnn"


def test_export_json(table):
    doc = json.loads(cmp.export(table.frame, "json", table.params, table.problems))
    assert doc["sam"] == {
        "alpha": 5.0,
        "beta": 5.0,
        "unit": "kWh",
        "formula": table.params.formula(),
    }
    assert len(doc["sessions"]) == 8 and doc["problems"]
    s = {x["name"]: x for x in doc["sessions"]}
    assert s["mobilenet-v2"]["sam_rank"] == 1
    assert s["smoke-test"]["sam"] is None and "1 kWh" in s["smoke-test"]["sam_undefined_reason"]


def test_export_latex_escapes(tmp_path):
    make_session(tmp_path, "20261101-000001-c001", name="a_b & 100%", tags=("x#1",))
    t = cmp.load_table(tmp_path)
    out = cmp.export(t.frame, "latex", t.params)
    assert r"a\_b \& 100\%" in out and r"x\#1" in out
    assert r"$\alpha$=5" in out and r"\caption{" in out and "SIMULATED" in out
    assert out.count(r"\\") >= 2


def test_empty_store(tmp_path):
    t = cmp.load_table(tmp_path)
    assert t.frame.height == 0 and t.problems == []
    for fmt in cmp.FORMATS:
        assert cmp.export(t.frame, fmt, t.params)


def test_running_session_listed_with_live_totals(tmp_path):
    make_session(
        tmp_path,
        "20261101-000001-d001",
        name="live-one",
        status="running",
        duration_s=1200,
        accs=(0.4,),
    )
    make_corrupt(tmp_path)
    t = cmp.load_table(tmp_path)
    r = t.frame.to_dicts()[0]
    assert r["status"] == "running" and r["energy_j"] > 0
    assert r["duration_s"] == pytest.approx(1200)
    assert r["accuracy"] == pytest.approx(0.4)


def test_metrics_read_from_events_when_meta_has_none(tmp_path):
    make_session(
        tmp_path, "20261101-000001-e001", name="old", accs=(0.3, 0.6, 0.5), metrics_in_meta=False
    )
    r = cmp.load_table(tmp_path).frame.to_dicts()[0]
    assert r["accuracy"] == pytest.approx(0.5) and r["best_accuracy"] == pytest.approx(0.6)


# -- CLI -----------------------------------------------------------------------------------
def run_cli(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_compare_formats(store, capsys):
    rc, out, err = run_cli(
        [
            "compare",
            "--store",
            str(store),
            "--format",
            "csv",
            "--filter",
            "tag:paper",
            "--sort=-sam",
        ],
        capsys,
    )
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows][:2] == ["mobilenet-v2", "efficientnet-b0"]
    assert "meta.json is not valid JSON" in err
    rc, out, _ = run_cli(
        [
            "compare",
            "--store",
            str(store),
            "--format",
            "md",
            "--alpha",
            "2",
            "--beta",
            "1",
            "--sam-unit",
            "Wh",
            "--sort",
            "energy",
            "--reverse",
        ],
        capsys,
    )
    assert rc == 0 and "alpha=2, beta=1" in out and "energy in Wh" in out
    body = [x for x in out.splitlines() if x.startswith("| ")][1:]
    assert body[0].split(" | ")[1].startswith("vit-h14")  # Rank first, then Name


def test_cli_compare_errors(store, capsys):
    rc, _, err = run_cli(
        ["compare", "--store", str(store), "--format", "md", "--sort", "zzz"], capsys
    )
    assert rc == 2 and "cannot sort" in err
    with pytest.raises(SystemExit) as exc:  # checked by the parser, as every command does
        run_cli(["compare", "--store", str(store), "--format", "md", "--beta", "0"], capsys)
    assert exc.value.code == 2 and "SAM beta must be a positive number" in capsys.readouterr().err
    rc, _, err = run_cli(
        ["compare", "--store", str(store), "--format", "md", "--filter", "since:never"], capsys
    )
    assert rc == 2 and "not a date" in err


def test_core_modules_do_not_import_textual(store):
    code = (
        "import sys, wattui.analysis.table, wattui.store.manage, wattui.cli.compare as c\n"
        "import argparse\n"
        "from wattui.cli.common import COMMON\n"
        "p = argparse.ArgumentParser(); c.add_parser(p.add_subparsers(dest='cmd'), COMMON)\n"
        f"a = p.parse_args(['compare', '--store', {str(store)!r}, '--format', 'json'])\n"
        "import io, contextlib\n"
        "with contextlib.redirect_stdout(io.StringIO()): c.run(a)\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'wattui.tui'))]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_times_are_utc(table):
    assert cmp.fmt_utc(T0) == "2026-11-01 08:00"


# -- row cache -------------------------------------------------------------------------------
def test_row_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    from wattui.store import manage

    make_demo_store(tmp_path)
    make_session(tmp_path, "20261109-100000-r009", name="live", status="running", accs=(0.4,))
    first = cmp.load_table(tmp_path)
    assert cmp.cache_path(tmp_path).exists()
    cached = {ln.split("\t")[0] for ln in cmp.cache_path(tmp_path).read_text().split("\n")[1:]}
    assert "20261109-100000-r009" not in cached  # running: always read fresh
    assert "20261107-140000-a007" in cached  # interrupted: its recorder is gone for good
    assert "20261101-080000-a001" in cached
    calls = []
    real = cmp.load_record
    monkeypatch.setattr(cmp, "load_record", lambda s: calls.append(s.id) or real(s))
    second = cmp.load_table(tmp_path)
    assert sorted(calls) == ["20261109-100000-r009"]
    assert second.frame.drop("sam_reason").equals(first.frame.drop("sam_reason"))
    assert second.problems == first.problems
    manage.rename(tmp_path, "20261101-080000-a001", "renamed")
    calls.clear()
    third = cmp.load_table(tmp_path)
    assert "20261101-080000-a001" in calls and "renamed" in third.frame["name"].to_list()
    manage.delete(tmp_path, "20261102-090000-a002")
    assert "mobilenet-v2" not in cmp.load_table(tmp_path).frame["name"].to_list()
    assert third.record("20261103-100000-a003")["name"] == "vit-h14"  # read on demand


def test_bad_cache_is_ignored(tmp_path):
    make_demo_store(tmp_path, corrupt=False)
    p = cmp.cache_path(tmp_path)
    p.parent.mkdir()
    for junk in ("{not json", '{"version": 999, "rows": {}}', '{"version": 1, "rows": 5}', "[]"):
        p.write_text(junk)
        assert cmp.load_table(tmp_path).frame.height == 8
    assert cmp.load_table(tmp_path, cache=False).frame.height == 8
