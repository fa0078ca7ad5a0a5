"""Simulated GPUs whose power is a known function of time, with a closed-form energy.

Power of GPU ``i`` at unix time ``t``::

    P_i(t) = idle + swing_i * (1 - cos(2*pi*t / period)) / 2

so its energy between ``t0`` and ``t1`` is exact (see :func:`energy_between`).
With ``square_period_s`` the load is a square wave instead (a training step: high
for the first half of each period, idle for the second, GPU ``i`` shifted by
``i/count`` of a period), again with a closed-form energy. With ``counter=False``
the source behaves like a GPU without an energy counter: energy is integrated from
the power read at each tick (trapezoids over the read timestamps, as the NVML source
does), so tests and benchmarks can compare the sampler's integration with the exact
energy. Everything this source produces is tagged ``simulated``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from wattui.sources.base import SIMULATED, DeviceInfo, DeviceReading, PowerIntegrator, PowerSource

IDLE_W = 60.0
PERIOD_S = 20.0


@dataclass(frozen=True)
class SimulatedGPU:
    index: int
    idle_w: float = IDLE_W
    period_s: float = PERIOD_S
    square: bool = False  # a square wave of period period_s instead of the cosine
    phase: float = 0.0  # fraction of a period (square wave only)

    @property
    def swing_w(self) -> float:
        return 180.0 + 30.0 * self.index

    def power(self, t: float) -> float:
        if self.square:
            high = (t / self.period_s + self.phase) % 1.0 < 0.5
            return self.idle_w + (self.swing_w if high else 0.0)
        return self.idle_w + self.swing_w * (1.0 - math.cos(2.0 * math.pi * t / self.period_s)) / 2.0

    def _high_time(self, t: float) -> float:
        """Time spent high in the square wave from the phase origin up to ``t``."""
        x = t / self.period_s + self.phase
        n = math.floor(x)
        return self.period_s * (0.5 * n + min(x - n, 0.5))

    def energy_between(self, t0: float, t1: float) -> float:
        """Exact energy in joules between unix times ``t0`` and ``t1``."""
        if self.square:
            return self.idle_w * (t1 - t0) + self.swing_w * (
                self._high_time(t1) - self._high_time(t0)
            )
        w = 2.0 * math.pi / self.period_s
        dt = t1 - t0  # differences first: unix times are large, keep the precision
        return self.idle_w * dt + self.swing_w * (dt - (math.sin(w * t1) - math.sin(w * t0)) / w) / 2.0


def energy_between(index: int, t0: float, t1: float) -> float:
    """Closed-form energy (J) of simulated GPU ``index`` between unix times t0 and t1."""
    return SimulatedGPU(index).energy_between(t0, t1)


class SimulatedSource(PowerSource):
    """N simulated GPUs. Energy is the closed form from the first read on."""

    name = "simulated"

    def __init__(
        self,
        count: int = 1,
        clock=time.time,
        *,
        square_period_s: float | None = None,
        counter: bool = True,
    ):
        if count < 1:
            raise ValueError("--simulate needs at least 1 GPU")
        if square_period_s is None:
            self.gpus = [SimulatedGPU(i) for i in range(count)]
        else:
            self.gpus = [
                SimulatedGPU(i, period_s=square_period_s, square=True, phase=i / count)
                for i in range(count)
            ]
        self._clock = clock
        self._t0: float | None = None
        self.counter = counter
        self._integ = [PowerIntegrator() for _ in self.gpus]
        self.last_t: float | None = None  # clock time of the latest read

    @property
    def needs_fast_poll(self) -> bool:
        """Without a counter the sampler must read often (as for NVML without one)."""
        return not self.counter

    def exact_energy(self, index: int) -> float:
        """Closed-form energy of GPU ``index`` between the first and the latest read."""
        if self._t0 is None or self.last_t is None:
            return 0.0
        return self.gpus[index].energy_between(self._t0, self.last_t)

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

    def poll_power(self, t_mono: float) -> None:
        if self.counter or self._t0 is None:
            return
        t = self._clock()
        self.last_t = t
        for g, integ in zip(self.gpus, self._integ, strict=True):
            integ.update(t, g.power(t))

    def read(self, t_mono: float) -> list[DeviceReading]:
        t = self._clock()
        if self._t0 is None:
            self._t0 = t
        self.last_t = t
        out = []
        for g, integ in zip(self.gpus, self._integ, strict=True):
            p = g.power(t)
            load = (p - g.idle_w) / g.swing_w
            energy = g.energy_between(self._t0, t) if self.counter else integ.update(t, p)
            out.append(
                DeviceReading(
                    key=f"gpu{g.index}",
                    energy_j=energy,
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
