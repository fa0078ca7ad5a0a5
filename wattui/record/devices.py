"""What a recording measures: the power sources for its options (NVML or simulated GPUs,
RAPL), the idle baseline measured before a launch, and the run's share of a shared GPU."""

from __future__ import annotations

import time
from dataclasses import dataclass

from wattui.record.options import RecordOptions
from wattui.sampler import Sampler
from wattui.sources.base import PowerSource, SourceUnavailable
from wattui.store.summary import SessionStats

__all__ = ["SourceSet", "build_sources", "follow_run", "measure_baseline"]


@dataclass
class SourceSet:
    sources: list[PowerSource]
    notes: list[str]  # one line per thing that cannot be measured, and why
    simulated: bool


def build_sources(
    opts: RecordOptions, *, visible: str | None = None, attach_pids: set[int] | None = None
) -> SourceSet:
    """GPU sources (NVML or simulated) and CPU sources (RAPL), with a note for each
    that is not available. Never raises for a missing device: a session without GPU
    energy is still a session, and it says so."""
    sources: list[PowerSource] = []
    notes: list[str] = []
    if opts.simulate:
        from wattui.sources.simulated import SimulatedSource

        sources.append(SimulatedSource(opts.simulate))
        notes.append(f"SIMULATED: {opts.simulate} simulated GPU(s); no real GPU is measured")
    else:
        try:
            from wattui.sources import nvml, nvml_lib

            indices = None
            if attach_pids:
                held = nvml_lib.gpus_of_pids(attach_pids)
                if held is None:
                    notes.append(
                        "cannot tell which GPUs the process uses; measuring all GPUs"
                    )
                elif not held:
                    notes.append(
                        "the process holds no GPU yet; measuring all GPUs"
                    )
                else:
                    indices = held
            src = nvml.NvmlSource(indices=indices, visible=visible)
            if not src.devices():
                notes.append("no GPU energy can be measured here: no GPU is visible to this run")
                src.close()
            else:
                sources.append(src)
        except SourceUnavailable as e:
            notes.append(f"no GPU energy can be measured here: {e}")
    try:
        from wattui.sources.rapl import RaplSource

        sources.append(RaplSource(opts.rapl_root))
    except SourceUnavailable as e:
        notes.append(f"no CPU energy: {e}")
    return SourceSet(sources, notes, simulated=bool(opts.simulate))


def follow_run(sources: list[PowerSource], proc_src, baseline: dict | None) -> None:
    """Sources that can split a shared GPU (NVML) report the run's share from now on:
    the run is the process tree ``proc_src`` follows."""
    idle = (baseline or {}).get("watts") or None
    for src in sources:
        follow = getattr(src, "follow_run", None)
        if follow is not None:
            follow(lambda: proc_src.pids, idle)


def measure_baseline(sources: list[PowerSource], secs: float, period_s: float) -> dict | None:
    """Mean power of each device over ``secs`` seconds before the run starts (None for 0)."""
    if secs <= 0:
        return None
    sampler = Sampler(sources, period_s)
    stats = SessionStats()
    sampler.subscribe(stats.add)
    sampler.sample_once()
    end = time.monotonic() + secs
    while time.monotonic() < end:
        time.sleep(min(sampler.period_s, max(0.0, end - time.monotonic())))
        sampler.sample_once()
    watts = {k: s.mean_w for k, s in stats.devices.items() if s.mean_w is not None}
    return {"seconds": secs, "watts": watts}
