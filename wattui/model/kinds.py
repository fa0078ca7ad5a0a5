"""The closed sets of wattui's vocabulary: device kinds, session statuses, measurement
methods, and the one way each is ordered or joined."""

from __future__ import annotations

from collections.abc import Iterable

# -- device kinds (``kind`` of a device in meta.json) -----------------------------------
GPU = "gpu"
CPU = "cpu"
DRAM = "dram"
# A run's estimated share of a GPU other processes may use too (key ``<gpu key>:run``).
SHARE = "share"
# Devices whose energy adds up to a session's: a share is part of its GPU, never added.
ENERGY_KINDS = (GPU, CPU, DRAM)
# Devices a session record lists under ``cpu`` (the host's package and memory).
HOST_KINDS = (CPU, DRAM)

# -- statuses --------------------------------------------------------------------------
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"
# Only the live screen's: the recorder has not written the session yet.
STARTING = "starting"
# What meta.json may say; anything else reads as interrupted.
STATUSES = (RUNNING, FINISHED, FAILED, INTERRUPTED)
# Sessions whose recorder is gone: their files, and so their records, change no more.
ENDED = (FINISHED, FAILED, INTERRUPTED)
# A multi-node group's status is the first of these that one of its nodes has: one node
# still running keeps the group running; one that failed fails it.
GROUP_STATUS_ORDER = (RUNNING, STARTING, FAILED, INTERRUPTED, FINISHED)


def group_status(statuses: Iterable[str | None], default: str = INTERRUPTED) -> str:
    """The status of a group whose nodes have ``statuses`` (see GROUP_STATUS_ORDER)."""
    seen = set(statuses)
    return next((st for st in GROUP_STATUS_ORDER if st in seen), default)


# -- measurement methods (wattui.sources.base spells the same for its readings) --------
COUNTER = "counter"  # read from a hardware energy counter (NVML total energy, RAPL)
INTEGRATED = "integrated"  # integrated from polled power
ESTIMATED = "estimated"  # derived from a model, not measured
SIMULATED = "simulated"  # a simulated device: a known function of time
NO_METHOD = "none"  # the device reports no energy
ENERGY_METHODS = (COUNTER, INTEGRATED, ESTIMATED, SIMULATED)
# What a live watts figure is
INSTANT = "instant"  # instantaneous sensor reading
AVERAGE_1S = "average-1s"  # the driver's 1-second moving average
DERIVED = "derived"  # dE/dt from the energy counter between two reads
POWER_METHODS = (INSTANT, AVERAGE_1S, DERIVED, ESTIMATED, SIMULATED)


def join_methods(methods: Iterable[str | None]) -> str:
    """The distinct methods, sorted, joined by ``+`` (``counter+integrated``); empty ones
    are left out and an empty result is ``""`` (each caller says what none means)."""
    return "+".join(sorted({m for m in methods if m}))
