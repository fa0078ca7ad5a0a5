"""Light ticks in a native thread: the compiled ``wattui.sources._ticker`` (``_ticker.c``).

On this 2-core VM a wake-up of a Python thread costs about 120 us of CPU and a C thread's
about 76 us; at the default 0.2 s period the sampler's thread woke five times a second
to make one field call per GPU four of those times. With the native ticker it wakes once
a second: the C thread takes the ticks on the same dithered schedule and keeps their
return codes and field bytes in a ring that the sampler drains (docs/measurement.md).

The extension is optional (an install without a C compiler has none) and can be turned
off with ``WATTUI_NATIVE_TICKS=0``; then the sampler's own thread takes every tick, as
before. Sources use :func:`available` to know, then :class:`FieldTicks`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from typing import Any

MODULE = "wattui.sources._ticker"
ENV = "WATTUI_NATIVE_TICKS"
RING_TICKS = 512  # 102 s at 0.2 s: the sampler drains every second


def available() -> bool:
    """Whether the compiled ticker is installed for this Python and not turned off."""
    return status()[0]


def status() -> tuple[bool, str]:
    """(available, one line saying why or why not), for ``wattui doctor``."""
    if os.environ.get(ENV, "1").strip() == "0":
        return False, f"turned off by {ENV}=0: the sampler's Python thread takes every tick"
    if importlib.util.find_spec(MODULE) is None:
        return False, (
            "not built for this Python (no C compiler at install): the sampler's Python "
            "thread takes every tick, about 1.3x the CPU; fix: install gcc, then reinstall wattui"
        )
    return True, "NVML's light ticks in a C thread (wattui-ticker); Python wakes once a second"


class FieldTicks:
    """One field call per GPU at each tick, in the native thread.

    ``fn``: the address of ``nvmlDeviceGetFieldValues``; ``calls``: (device handle's
    address, field count, byte offset in the buffer) per GPU; ``template``: the field
    buffer with its field ids set; ``field_size``: the bytes of one field struct (NVML
    writes ``count`` of them from each offset: the ticker refuses a call that would not
    fit). ``make``: (t_mono, return codes, field bytes) -> the
    source's light capture; ``complete``: that capture -> a full one; ``ok``: whether the
    source can still use these ticks."""

    def __init__(
        self,
        fn: int,
        calls: list[tuple[int, int, int]],
        template: bytes,
        *,
        field_size: int,
        t0: float,
        slot_s: float,
        seed: int,
        wake_fd: int,
        make: Callable[[float, list[int], bytes], Any],
        complete: Callable[[Any], Any],
        ok: Callable[[], bool],
    ):
        ticker = importlib.import_module(MODULE)
        self._t = ticker.Ticker(
            fn, calls, template, t0, slot_s, seed & 0xFFFFFFFFFFFFFFFF, wake_fd, field_size,
            RING_TICKS,
        )
        self._make = make
        self.complete = complete
        self._ok = ok
        self._closed = False
        self._t.start()

    def drain(self) -> list[tuple[float, float, Any]]:
        make = self._make
        return [(tm, tw, make(tm, rcs, buf)) for tm, tw, rcs, buf in self._t.drain()]

    def wake_at(self, t_mono: float) -> None:
        self._t.wake_at(t_mono)

    @property
    def ok(self) -> bool:
        """Still taking ticks: not closed, the source can batch, and the thread runs (it
        ends on its own only if it could not allocate its buffers)."""
        return not self._closed and self._ok() and self._t.running()

    def stats(self) -> tuple[int, int]:
        """(ticks taken, ticks dropped because the ring was full)."""
        return self._t.stats()

    def close(self) -> None:
        self._closed = True
        self._t.stop()
