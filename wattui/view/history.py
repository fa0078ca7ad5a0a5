"""Bounded power history for the live chart: per-second buckets for the last hour,
coarser (merged as they fill) for everything before."""

from __future__ import annotations

import math
from collections import deque

FINE_BUCKET_S = 1.0
FINE_POINTS = 3600  # one hour at one point a second
COARSE_POINTS = 2048  # everything older, merged pairwise as it fills
COARSE_START_S = 10.0


class PowerHistory:
    """Total watts over time in bounded memory (owned by the builder's thread).

    The last ``fine_points`` seconds are kept as one-second means; older buckets fold
    into coarse ones whose width doubles whenever there are more than ``coarse_points``.
    A 72-hour run therefore holds at most ~5,700 points.
    """

    def __init__(
        self,
        fine_s: float = FINE_BUCKET_S,
        fine_points: int = FINE_POINTS,
        coarse_points: int = COARSE_POINTS,
        coarse_s: float = COARSE_START_S,
    ):
        self.fine_s = fine_s
        self.fine_points = fine_points
        self.coarse_points = coarse_points
        self.coarse_s = coarse_s
        self.fine: deque[list[float]] = deque()  # [bucket start, sum, n]
        self.coarse: list[list[float]] = []

    def __len__(self) -> int:
        return len(self.fine) + len(self.coarse)

    def add(self, t: float, w: float, n: float = 1.0) -> None:
        """Add ``n`` readings whose sum is ``w * n`` at time ``t``."""
        b = math.floor(t / self.fine_s) * self.fine_s
        fine = self.fine
        if fine and b <= fine[-1][0]:
            last = fine[-1]  # same bucket (or a late row): fold into the newest
            last[1] += w * n
            last[2] += n
            return
        fine.append([b, w * n, n])
        while len(fine) > self.fine_points:
            t0, s, k = fine.popleft()
            self._add_coarse(t0, s, k)

    def _add_coarse(self, t: float, s: float, n: float) -> None:
        cb = math.floor(t / self.coarse_s) * self.coarse_s
        c = self.coarse
        if c and cb <= c[-1][0]:
            c[-1][1] += s
            c[-1][2] += n
            return
        c.append([cb, s, n])
        if len(c) > self.coarse_points:
            self.coarse_s *= 2
            merged: list[list[float]] = []
            for t0, s0, n0 in c:
                nb = math.floor(t0 / self.coarse_s) * self.coarse_s
                if merged and merged[-1][0] == nb:
                    merged[-1][1] += s0
                    merged[-1][2] += n0
                else:
                    merged.append([nb, s0, n0])
            self.coarse = merged

    def points(self) -> tuple[tuple[float, float], ...]:
        """(time at the bucket's middle, mean watts), oldest first."""
        hc, hf = self.coarse_s / 2, self.fine_s / 2
        out = [(t + hc, s / n) for t, s, n in self.coarse if n]
        out.extend((t + hf, s / n) for t, s, n in self.fine if n)
        return tuple(out)
