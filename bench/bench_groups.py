"""The one held sum of several nodes' power (wattui.groups.merge.held_sum), at the sizes
its two users meet.

    python bench/bench_groups.py [--runs 5] [--live-points 5700] [--details-points 86400]

Live: the live group view sums the nodes' power histories at every snapshot (about once a
second, in the viewer's worker thread); a history holds at most ~5,700 points per node
(wattui.view.history), so: 3 and 8 nodes at ``--live-points`` each (target < 10 ms a
node: the tuples are turned into frames and back, which costs more than the sum itself).
Details: the details screen sums the nodes' power and energy once when it opens: 8 nodes of
``--details-points`` samples each (a day at one sample a second; target < 2 s).
Prints the median over ``--runs`` runs; exits 1 with SLOWER THAN TARGET when one misses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIVE_TARGET_S_PER_NODE = 0.010
DETAILS_TARGET_S = 2.0


def _median_s(fn, args: tuple, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _series(nodes: int, points: int) -> list[tuple[tuple[float, float], ...]]:
    """Per-node (time, watts) points, one a second, nodes' clocks apart by a fraction."""
    return [
        tuple((t0 + i, 250.0 + (i * 7 + k) % 100) for i in range(points))
        for k, t0 in enumerate(1.8e9 + 0.13 * k for k in range(nodes))
    ]


def main() -> int:
    import polars as pl

    from wattui.groups.merge import POINTS_SCHEMA, held_sum, held_sum_points

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--live-points", type=int, default=5700)
    ap.add_argument("--details-points", type=int, default=86_400)
    args = ap.parse_args()

    slow = []
    for nodes in (3, 8):
        hs = _series(nodes, args.live_points)
        s = _median_s(held_sum_points, (hs, [True] * nodes), args.runs)
        print(f"live group view, {nodes} nodes x {args.live_points} points: median {s * 1e3:.1f} ms")
        if s > LIVE_TARGET_S_PER_NODE * nodes:
            slow.append(f"live {nodes} nodes")
    frames = [
        pl.DataFrame(list(h), schema=POINTS_SCHEMA, orient="row")
        for h in _series(8, args.details_points)
    ]
    s = _median_s(held_sum, (frames, [False] * 8), args.runs)
    print(f"details screen, 8 nodes x {args.details_points} points: median {s:.3f} s")
    if s > DETAILS_TARGET_S:
        slow.append("details")
    if slow:
        print(f"SLOWER THAN TARGET: {', '.join(slow)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
