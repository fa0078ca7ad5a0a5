"""Multi-node groups: several recorders (one per node) write one group into a shared store,
and wattui.groups.merge.group_records merges their sessions into one record."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wattui.groups.merge import group_records, merge_group
from wattui.groups.node_env import node_hostname

ROOT = Path(__file__).resolve().parent.parent


def _part(sid, host, group="g1", energy=100.0, status="finished", **kw):
    rec = {
        "id": sid,
        "name": kw.pop("name", "train"),
        "host": host,
        "group": group,
        "status": status,
        "exit_code": 0 if status == "finished" else (1 if status == "failed" else None),
        "started_at": kw.pop("started_at", 1000.0),
        "ended_at": kw.pop("ended_at", 1100.0),
        "duration_s": 100.0,
        "energy_j": energy,
        "gpu_energy_j": energy,
        "simulated": False,
        "gpus": [
            {"key": "gpu0", "uuid": f"GPU-{host}-0", "energy_j": energy / 2},
            {"key": "gpu1", "uuid": f"GPU-{host}-1", "energy_j": energy / 2},
        ],
        "cpu": [],
        "notes": [],
        "tags": [],
        "sam_alpha": 5.0,
        "sam_beta": 5.0,
        "sam_unit": "Wh",
    }
    rec.update(kw)
    return rec


def test_ungrouped_records_stay_as_they_are_and_in_place():
    a = _part("a", "n1", group=None)
    b = _part("b", "n1")
    c = _part("c", "n2")
    d = _part("d", "n3", group="")
    out = group_records([a, b, d, c])
    assert out[0] is a and out[2] is d
    assert out[1]["kind"] == "group" and out[1]["id"] == "group:g1"
    assert out[1]["session_ids"] == ["b", "c"]
    assert len(out) == 3


def test_merge_sums_energy_and_keeps_one_entry_per_node_and_gpu():
    parts = [
        _part("s1", "node-a", energy=3600.0, started_at=10.0, ended_at=50.0),
        _part("s2", "node-b", energy=7200.0, started_at=5.0, ended_at=70.0),
    ]
    rec = merge_group("g1", parts)
    assert rec["energy_j"] == pytest.approx(10800.0)
    assert rec["started_at"] == 5.0 and rec["ended_at"] == 70.0
    assert rec["duration_s"] == pytest.approx(65.0)
    assert [n["host"] for n in rec["nodes"]] == ["node-a", "node-b"]
    assert [g["key"] for g in rec["gpus"]] == [
        "node-a:gpu0", "node-a:gpu1", "node-b:gpu0", "node-b:gpu1",
    ]
    assert rec["gpus"][2]["host"] == "node-b" and rec["gpus"][2]["node_key"] == "gpu0"
    assert rec["status"] == "finished" and rec["exit_code"] == 0
    assert rec["name"] == "train"


@pytest.mark.parametrize(
    "statuses, expected",
    [
        (("finished", "running", "failed"), "running"),
        (("finished", "failed", "interrupted"), "failed"),
        (("finished", "interrupted"), "interrupted"),
        (("finished", "finished"), "finished"),
    ],
)
def test_group_status(statuses, expected):
    parts = [_part(f"s{i}", f"n{i}", status=st) for i, st in enumerate(statuses)]
    rec = merge_group("g", parts)
    assert rec["status"] == expected
    if expected == "running":
        assert rec["ended_at"] is None


def test_accuracy_comes_from_the_rank_that_reported_it_and_sam_uses_the_total():
    from wattui.metrics.sam import sam
    parts = [
        _part("s1", "n1", energy=36000.0, accuracy=None, accuracy_reports=0),
        _part("s2", "n2", energy=36000.0, accuracy=0.9, accuracy_reports=3, best_accuracy=0.92),
        _part("s3", "n3", energy=36000.0, accuracy=None, accuracy_reports=0),
    ]
    rec = merge_group("g", parts)
    assert rec["accuracy"] == 0.9 and rec["best_accuracy"] == 0.92
    assert rec["accuracy_node"] == "n2"
    expected = sam(0.9, 108000.0, 5.0, 5.0, "Wh")
    assert rec["sam"] == pytest.approx(expected.value)
    assert rec["sam_unit"] == "Wh"
    # rank 0 wins when several ranks reported
    parts[0].update(accuracy=0.5, rank=0)
    parts[1]["rank"] = 1
    assert merge_group("g", parts)["accuracy"] == 0.5


def test_same_host_parts_are_told_apart():
    rec = merge_group("g", [_part("s1", "box"), _part("s2", "box")])
    labels = [n["label"] for n in rec["nodes"]]
    assert labels == ["box/s1", "box/s2"]
    assert len({g["key"] for g in rec["gpus"]}) == 4


def test_hostname_override(monkeypatch):
    monkeypatch.setenv("WATTUI_HOSTNAME", "node-17")
    assert node_hostname() == "node-17"
    monkeypatch.delenv("WATTUI_HOSTNAME")
    assert node_hostname()


@pytest.mark.slow
def test_three_recorders_write_one_group_into_a_shared_store(tmp_path, monkeypatch):
    """Three `wattui record --group g1` processes at once (one per "node"), one store."""
    from wattui.sessions import session_record
    from wattui.store.reader import list_sessions

    store = tmp_path / "shared"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTUI_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["WATTUI_CHANNEL_DIR"] = str(tmp_path / "chan")
    procs = []
    for rank in range(3):
        script = textwrap.dedent(
            f"""
            import time, wattui
            if {rank} == 0:
                wattui.report(accuracy=0.91, epoch=1, total_epochs=1)
            time.sleep(1.5)
            """
        )
        cmd = [
            sys.executable, "-m", "wattui", "record", "--simulate", "2" if rank == 1 else "1",
            "--group", "g1", "--store", str(store), "--name", "ddp", "--period", "0.1",
            "--", sys.executable, "-c", script,
        ]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode(errors="replace")
    # an unrelated, ungrouped session in the same store stays as it is
    subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--store", str(store),
         "--", sys.executable, "-c", "pass"],
        env={k: v for k, v in env.items() if k not in ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID")},
        check=True, capture_output=True, timeout=60,
    )

    sessions, problems = list_sessions(store)
    assert not problems
    recs = [session_record(s) for s in sessions]
    parts = [r for r in recs if r["group"] == "g1"]
    assert len(parts) == 3 and len(recs) == 4
    merged = group_records(recs)
    assert len(merged) == 2
    (g,) = [r for r in merged if r.get("kind") == "group"]
    (solo,) = [r for r in merged if r.get("kind") != "group"]
    assert solo in recs

    assert g["group"] == "g1" and g["status"] == "finished"
    assert all(p["energy_j"] and p["energy_j"] > 0 for p in parts)
    assert g["energy_j"] == pytest.approx(sum(p["energy_j"] for p in parts), rel=1e-12)
    assert len(g["nodes"]) == 3
    assert sorted(n["id"] for n in g["nodes"]) == sorted(p["id"] for p in parts)
    assert all(n["host"] for n in g["nodes"])
    assert len(g["gpus"]) == 4 and len({x["key"] for x in g["gpus"]}) == 4
    assert all(x["key"].startswith(x["host"]) for x in g["gpus"])
    assert g["started_at"] == min(p["started_at"] for p in parts)
    assert g["ended_at"] == max(p["ended_at"] for p in parts)
    assert g["simulated"] is True
    from wattui.metrics.sam import sam

    assert g["accuracy"] == pytest.approx(0.91)  # from rank 0, the one that reported it
    want = sam(0.91, g["energy_j"], g["sam_alpha"], g["sam_beta"], g["sam_unit"])
    assert g["sam"] == want.value
    assert g["sam_undefined_reason"] == want.undefined_reason

    # docs/cluster.md's Polars recipe reads the same total from all nodes' samples.parquet
    snippet = _docs_snippet("## Comparing runs across nodes with Polars")
    monkeypatch.setenv("WATTUI_HOME", str(store))
    ns: dict = {}
    exec(compile(snippet.replace("print(per_group)", ""), "docs/cluster.md", "exec"), ns)
    (row,) = ns["per_group"].to_dicts()
    assert row["group"] == "g1" and row["sessions"] == 3 and row["gpus"] == 4
    assert row["energy_kwh"] * 3.6e6 == pytest.approx(g["energy_j"], rel=1e-9)


def _docs_snippet(heading: str) -> str:
    text = (ROOT / "docs" / "cluster.md").read_text()
    section = text[text.index(heading):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```", start)]


def test_the_comparison_table_puts_the_group_row_where_its_first_node_was(tmp_path):
    """load_table groups with group_records: the same rows, in the same order, whether
    the other sessions' rows come from the record cache or are read again."""
    from compare_fixtures import GROUP_ID, GROUP_PARTS, make_demo_store, make_group, make_session

    from wattui.analysis.table import load_table
    from wattui.sessions import session_record
    from wattui.store.reader import list_sessions

    store = make_demo_store(tmp_path / "store", corrupt=False)
    make_group(store)
    make_session(store, "20261109-093000-late", name="after-the-group")
    part_ids = [sid for sid, _ in GROUP_PARTS]
    sessions, _ = list_sessions(store)
    want = [r["id"] for r in group_records([session_record(s) for s in sessions])]
    assert want.index(f"group:{GROUP_ID}") == len(want) - 2  # before the later session
    for cache in (True, True, False):  # writes the cache, reads it, ignores it
        table = load_table(store, cache=cache)
        assert table.ids == want
        assert not set(part_ids) & set(table.ids)
        g = table.records[f"group:{GROUP_ID}"]
        assert g["session_ids"] == part_ids and g["kind"] == "group"


@pytest.mark.parametrize(
    "statuses, want",
    [
        (["finished", "running", "failed"], "running"),
        (["finished", "starting"], "starting"),
        (["interrupted", "failed", "finished"], "failed"),
        (["finished", "interrupted"], "interrupted"),
        (["finished", "finished"], "finished"),
        ([None, "bogus"], "interrupted"),
    ],
)
def test_one_order_for_a_groups_status(statuses, want):
    from wattui.groups.merge import group_status

    assert group_status(statuses) == want
    parts = [_part(f"s{i}", f"n{i}", status=st) for i, st in enumerate(statuses)]
    assert merge_group("g", parts)["status"] == want
