"""The one sum of several nodes' power and energy over time (wattui.groups.merge.held_sum),
checked against closed forms, and through both of its users: the live group view
(merge_snapshots) and the details screen (Timeline.merge on real sessions)."""

from __future__ import annotations

import math

import polars as pl
import pytest
from compare_fixtures import GROUP_ID, GROUP_PARTS, make_group

from wattui.groups.merge import POINTS_SCHEMA, held_sum, held_sum_points
from wattui.view.group_snapshot import merge_snapshots
from wattui.view.snapshot import LiveSnapshot

# Three nodes at constant power P over [start, end], each sampled every `period` seconds
# (binary-exact numbers, so every expected figure below is exact).
NODES = [  # (P watts, start, end, period)
    (300.0, 0.0, 100.0, 1.0),
    (200.0, 20.0, 60.0, 2.5),
    (100.0, 50.0, 150.0, 0.5),
]


def _times(start, end, period):
    return [start + i * period for i in range(int((end - start) / period) + 1)]


def _power(node):
    p, s, e, dt = node
    return [(t, p) for t in _times(s, e, dt)]


def _energy(node):
    p, s, e, dt = node
    return [(t, p * (t - s)) for t in _times(s, e, dt)]


def _last_sample(node, t):
    """The node's last sample time at or before t (None before its first)."""
    _, s, e, dt = node
    if t < s:
        return None
    return s + dt * math.floor((min(t, e) - s) / dt)


def _union_times():
    return sorted({t for n in NODES for t in _times(n[1], n[2], n[3])})


def _frames(points):
    return [pl.DataFrame(p, schema=POINTS_SCHEMA, orient="row") for p in points]


@pytest.mark.parametrize("held", [(False, False, False), (True, True, True), (False, True, False)])
def test_power_is_each_running_node_summed_at_every_time(held):
    want = [
        (t, sum(p for (p, s, e, _), keep in zip(NODES, held) if s <= t and (t <= e or keep)))
        for t in _union_times()
    ]
    assert held_sum_points([_power(n) for n in NODES], held) == tuple(want)
    got = held_sum(_frames([_power(n) for n in NODES]), held)
    assert list(zip(got["t_wall"], got["v"])) == want


def test_energy_held_after_a_node_ends_adds_up_to_every_nodes_total():
    want = []
    for t in _union_times():
        total = 0.0
        for node in NODES:
            last = _last_sample(node, t)
            if last is not None:
                total += node[0] * (last - node[1])
        want.append((t, total))
    got = held_sum_points([_energy(n) for n in NODES], [True] * 3)
    assert got == tuple(want)
    assert dict(got)[55.0] == 300 * 55 + 200 * 35 + 100 * 5
    assert got[-1] == (150.0, sum(p * (e - s) for p, s, e, _ in NODES))  # 48 kJ


def test_edges_no_series_one_series_and_same_time_twice():
    assert held_sum_points([], []) == ()
    assert held_sum_points([(), ()], [True, False]) == ()
    one = ((1.0, 5.0), (2.0, 6.0))
    assert held_sum_points([(), one], [False, False]) == one
    # a later point at the same time replaces the earlier one
    a, b = ((0.0, 1.0), (1.0, 2.0), (1.0, 4.0), (2.0, 8.0)), ((0.5, 10.0),)
    assert held_sum_points([a, b], [False, True]) == (
        (0.0, 1.0), (0.5, 11.0), (1.0, 14.0), (2.0, 18.0),
    )
    assert held_sum(_frames([a, b]), [False, False])["v"].to_list() == [1.0, 11.0, 4.0, 8.0]
    # nodes are added in order, so both screens show the same float
    tenths = [((0.0, x),) for x in (0.1, 0.2, 0.3)]
    assert held_sum_points(tenths, [True] * 3) == ((0.0, (0.1 + 0.2) + 0.3),)
    assert (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)


def test_the_live_group_view_sums_running_nodes_held_and_ended_nodes_not():
    statuses = ("running", "finished", "running")
    snaps = [
        LiveSnapshot(
            session_id=f"s{k}", now=200.0, status=st, history=tuple(_power(n)), host=f"h{k}"
        )
        for k, (n, st) in enumerate(zip(NODES, statuses))
    ]
    merged = merge_snapshots("g", snaps, now=200.0)
    assert merged.session_id == "group:g" and merged.node_count == 3
    # at 120 s: node 0 (last point at 100 s) still runs, so held; node 1 finished at 60 s
    assert dict(merged.history)[120.0] == 300.0 + 100.0
    want = [
        (t, sum(p for (p, s, e, _), st in zip(NODES, statuses) if s <= t and (t <= e or st == "running")))
        for t in _union_times()
    ]
    assert merged.history == tuple(want)


def test_the_details_screen_sums_the_nodes_of_a_real_group(tmp_path):
    """Timeline.merge on the fixture's three sessions (node i starts i seconds after node
    0, samples every 300 s, GPU g of node i draws watts*(0.9 + 0.1 sin(k/5 + g)) at
    sample k > 0 and watts*0.3 at k = 0): the total at every sample time, closed form."""
    from wattui.analysis.timeline import Timeline
    from wattui.store.reader import Session

    t0 = 1_800_000_000.0
    dirs = make_group(tmp_path / "store", GROUP_ID, started_at=t0)
    merged = Timeline.merge([(f"n{i}", Timeline(Session.open(d))) for i, d in enumerate(dirs)])

    def node_w(i, k):
        kw = GROUP_PARTS[i][1]
        w = kw["watts"]
        return sum(w * (0.9 + 0.1 * math.sin(k / 5.0 + g)) if k else w * 0.3 for g in range(kw["n_gpus"]))

    n = int(4 * 3600 // 300) + 1
    want = []
    for k in range(n):
        for i in range(3):  # node i's k-th sample at t0 + i + 300 k
            total = sum(node_w(j, k) for j in range(i + 1))  # nodes at or before i: sample k
            if k:  # later nodes still show sample k-1 (before their first: nothing)
                total += sum(node_w(j, k - 1) for j in range(i + 1, 3))
            want.append((t0 + i + 300.0 * k, total))
    # after the end: a node that stopped adds nothing (power is not held)
    want[-2:] = [(t0 + 1 + 300.0 * (n - 1), node_w(1, n - 1) + node_w(2, n - 2)),
                 (t0 + 2 + 300.0 * (n - 1), node_w(2, n - 1))]
    got = merged.total_points
    assert [t for t, _ in got] == [t for t, _ in want]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-12)
    energy = merged.energy_j
    assert energy["v"][-1] == pytest.approx(
        sum(Timeline(Session.open(d)).energy_j["v"][-1] for d in dirs), rel=1e-12
    )
