"""Simulated GPUs whose power is a known function of time, with a closed-form energy.

Power of GPU ``i`` at unix time ``t``::

    P_i(t) = idle + swing_i * (1 - cos(2*pi*t / period)) / 2

so its energy between ``t0`` and ``t1`` is exact (see :func:`energy_between`).
Tests compare recorded energy with that closed form. Everything this source
produces is tagged ``simulated``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .base import SIMULATED, DeviceInfo, DeviceReading, PowerSource

IDLE_W = 60.0
PERIOD_S = 20.0


@dataclass(frozen=True)
class SimulatedGPU:
    index: int
    idle_w: float = IDLE_W
    period_s: float = PERIOD_S

    @property
    def swing_w(self) -> float:
        return 180.0 + 30.0 * self.index

    def power(self, t: float) -> float:
        return self.idle_w + self.swing_w * (1.0 - math.cos(2.0 * math.pi * t / self.period_s)) / 2.0

    def energy_between(self, t0: float, t1: float) -> float:
        """Exact energy in joules between unix times ``t0`` and ``t1``."""
        w = 2.0 * math.pi / self.period_s
        dt = t1 - t0  # differences first: unix times are large, keep the precision
        return self.idle_w * dt + self.swing_w * (dt - (math.sin(w * t1) - math.sin(w * t0)) / w) / 2.0


def energy_between(index: int, t0: float, t1: float) -> float:
    """Closed-form energy (J) of simulated GPU ``index`` between unix times t0 and t1."""
    return SimulatedGPU(index).energy_between(t0, t1)


class SimulatedSource(PowerSource):
    """N simulated GPUs. Energy is the closed form from the first read on."""

    name = "simulated"

    def __init__(self, count: int = 1, clock=time.time):
        if count < 1:
            raise ValueError("--simulate needs at least 1 GPU")
        self.gpus = [SimulatedGPU(i) for i in range(count)]
        self._clock = clock
        self._t0: float | None = None

    def devices(self) -> list[DeviceInfo]:
        return [
            DeviceInfo(
                key=f"gpu{g.index}",
                kind="gpu",
                index=g.index,
                name="SIMULATED GPU",
                uuid=f"GPU-SIMULATED-{g.index:04d}",
                driver="simulated",
                power_limit_w=400.0,
                energy_method=SIMULATED,
                power_method=SIMULATED,
                simulated=True,
            )
            for g in self.gpus
        ]

    def read(self, t_mono: float) -> list[DeviceReading]:
        t = self._clock()
        if self._t0 is None:
            self._t0 = t
        out = []
        for g in self.gpus:
            p = g.power(t)
            load = (p - g.idle_w) / g.swing_w
            out.append(
                DeviceReading(
                    key=f"gpu{g.index}",
                    energy_j=g.energy_between(self._t0, t),
                    power_w=p,
                    energy_method=SIMULATED,
                    power_method=SIMULATED,
                    util_pct=round(100.0 * load, 1),
                    mem_used_b=(20 + 10 * load) * 2**30,
                    mem_total_b=80 * 2**30,
                    temp_c=35.0 + 40.0 * load,
                    pids=None,
                )
            )
        return out
