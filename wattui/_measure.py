"""The energy of a block of code: ``with wattui.measure("eval") as m: ...``.

Also a decorator (``@wattui.measure("step")``, the latest call's figures stay on the object)
and ``m = wattui.measure("eval").begin(); ...; m.end()`` for code that cannot use ``with``.

After the block: ``m.energy_j`` (total over the measured GPUs), ``m.gpus`` (one dict per GPU:
``index``, ``uuid``, ``energy_j``, ``method``), ``m.cpu`` (RAPL zones, where readable, else
``None``), ``m.started_at``/``m.ended_at`` (unix seconds), ``m.duration_s``, ``m.simulated``.
Inside the block the same properties give the running value (the counters read now).

It reads the counters in this process through wattui's own sources, opened once on first
use: ``WATTUI_SIMULATE=N`` gives N simulated GPUs (``wattui record --simulate N`` sets it for
the run), else NVML (the GPUs ``CUDA_VISIBLE_DEVICES`` selects) and RAPL. GPUs without an
energy counter are integrated from power read every 100 ms (dithered, as the sampler does)
by a daemon thread while a window is open. Under ``wattui record`` each finished window is
also sent to the recorder (a ``kind: "measure"`` event in the session, shown on the live
screen). With nothing to measure it says so once on stderr and every figure is ``None``
(n/a). It never raises into the training script; ``WATTUI_RAPL_ROOT`` moves the RAPL tree.

This module imports only the standard library; the sources are imported on first use.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time

from wattui import _report

__all__ = ["measure", "Measurement"]

ENV_SIMULATE = "WATTUI_SIMULATE"
ENV_RAPL_ROOT = "WATTUI_RAPL_ROOT"  # where the RAPL tree is (tests; containers that mount it elsewhere)
POLL_S = 0.1  # read period for GPUs whose energy is integrated from power


class _Meter:
    """The process's sources, opened once; shared by every window (nested ones too)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.sources: list = []
        self.devices: dict = {}  # key -> DeviceInfo
        self.notes: list[str] = []
        self.simulated = False
        self.open_windows = 0
        self._poller: threading.Thread | None = None
        self._opened = False
        self._said_nothing = False

    def open(self) -> None:
        if self._opened:
            return
        self._opened = True
        try:
            self._open_sources()
        except ImportError as e:  # the report shim of another Python: no sources here
            self.notes.append(f"wattui's sources are not importable in this Python ({e})")
        except Exception as e:  # noqa: BLE001 - never into the training loop
            self.notes.append(f"opening the sources failed: {type(e).__name__}: {e}")
        for src in self.sources:
            for d in src.devices():
                if d.kind in ("gpu", "cpu", "dram"):
                    self.devices[d.key] = d

    def _open_sources(self) -> None:
        from wattui.sources.base import SourceUnavailable  # noqa: PLC0415 - lazy on purpose

        sim = os.environ.get(ENV_SIMULATE, "").strip()
        if sim:
            from wattui.sources.simulated import SimulatedSource  # noqa: PLC0415

            try:
                n = int(sim)
            except ValueError:
                n = 0
            if n < 1:
                self.notes.append(f"{ENV_SIMULATE}={sim!r} is not a number of GPUs >= 1")
            else:
                self.sources.append(SimulatedSource(n))
                self.simulated = True
        else:
            from wattui.sources.nvml import NvmlSource  # noqa: PLC0415

            try:
                self.sources.append(NvmlSource())
            except SourceUnavailable as e:
                self.notes.append(f"no GPU: {e}")
        from wattui.sources.rapl import DEFAULT_ROOT, RaplSource  # noqa: PLC0415

        try:
            self.sources.append(RaplSource(os.environ.get(ENV_RAPL_ROOT) or DEFAULT_ROOT))
        except SourceUnavailable as e:
            self.notes.append(f"no CPU: {e}")

    @property
    def needs_poll(self) -> bool:
        return any(getattr(s, "needs_fast_poll", False) for s in self.sources)

    def read(self) -> tuple[float, dict]:
        """(unix time of the read, key -> energy in J since the source opened, or None)."""
        out: dict = {}
        with self.lock:
            t = time.time()
            tm = time.monotonic()
            for src in self.sources:
                try:
                    for r in src.read(tm):
                        if r.key in self.devices:
                            out[r.key] = r.energy_j
                except Exception:  # noqa: BLE001 - one failed read is a one-read n/a
                    pass
        return t, out

    def window_opened(self) -> None:
        with self.lock:
            self.open_windows += 1
            if self.needs_poll and (self._poller is None or not self._poller.is_alive()):
                self._poller = threading.Thread(target=self._poll, name="wattui-measure", daemon=True)
                self._poller.start()

    def window_closed(self) -> None:
        with self.lock:
            self.open_windows = max(0, self.open_windows - 1)

    def _poll(self) -> None:
        import random  # noqa: PLC0415

        from wattui.sampler import ReadSchedule  # noqa: PLC0415 - the sampler's dithered reads

        # One read at a random moment of every 100 ms slot, as the sampler does, so a
        # periodic load cannot phase-lock with the reads.
        schedule = ReadSchedule(time.monotonic(), POLL_S, random.Random())
        while True:
            now = time.monotonic()
            time.sleep(max(0.0, schedule.next_read(now) - now))
            with self.lock:
                if self.open_windows == 0:
                    self._poller = None
                    return
            self.read()

    def say_nothing_once(self) -> None:
        if self._said_nothing:
            return
        self._said_nothing = True
        why = "; ".join(self.notes) or "no energy source"
        try:
            print(f"wattui.measure: nothing to measure here, energy is n/a ({why})", file=sys.stderr)
        except Exception:  # noqa: BLE001
            pass


_meter: _Meter | None = None
_meter_lock = threading.Lock()


def _get_meter() -> _Meter:
    global _meter
    with _meter_lock:
        if _meter is None or _meter.pid != os.getpid():  # a forked child opens its own
            _meter = _Meter()
        m = _meter
    with m.lock:
        m.open()
    return m


def _synchronize() -> None:
    torch = sys.modules.get("torch")  # only a script that already uses torch has work to wait for
    try:
        if torch is not None and torch.cuda.is_available():
            torch.cuda.synchronize()
    except Exception:  # noqa: BLE001
        pass


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


class Measurement:
    """One measured window. Use it as a context manager, a decorator, or begin()/end()."""

    def __init__(self, name: str | None = None, *, synchronize: bool = False):
        self.name = name
        self.synchronize = synchronize
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._meter: _Meter | None = None
        self._e0: dict = {}
        self._e1: dict | None = None

    # ------------------------------------------------------------------ edges
    def begin(self) -> Measurement:
        """Open the window (again, if it was used before)."""
        try:
            if self.synchronize:
                _synchronize()
            meter = _get_meter()
            self._meter = meter
            self._e1 = None
            self.ended_at = None
            if not meter.devices:
                meter.say_nothing_once()
                self.started_at = time.time()
                return self
            meter.window_opened()
            self.started_at, self._e0 = meter.read()
        except Exception:  # noqa: BLE001 - never into the training loop
            self.started_at = self.started_at or time.time()
        return self

    def end(self) -> Measurement:
        """Close the window; the figures are final from now on."""
        try:
            if self.started_at is None or self._e1 is not None:
                return self
            if self.synchronize:
                _synchronize()
            meter = self._meter
            if meter is None or not meter.devices:
                self.ended_at = time.time()
                self._e1 = {}
                self._send()  # the window still reaches a recorder, which measures itself
                return self
            self.ended_at, self._e1 = meter.read()
            meter.window_closed()
            self._send()
        except Exception:  # noqa: BLE001
            if self.ended_at is None:
                self.ended_at = time.time()
            if self._e1 is None:
                self._e1 = {}
        return self

    def __enter__(self) -> Measurement:
        return self.begin()

    def __exit__(self, *exc) -> bool:
        self.end()
        return False

    def __call__(self, fn):
        """Decorator: each call of ``fn`` is one window; this object keeps the latest."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            self.begin()
            try:
                return fn(*args, **kwargs)
            finally:
                self.end()

        wrapper.measurement = self  # type: ignore[attr-defined]
        return wrapper

    # ---------------------------------------------------------------- figures
    @property
    def running(self) -> bool:
        return self.started_at is not None and self._e1 is None

    def _now(self) -> tuple[float | None, dict]:
        if self._e1 is not None:
            return self.ended_at, self._e1
        if self.started_at is None or self._meter is None or not self._meter.devices:
            return None, {}
        try:
            return self._meter.read()
        except Exception:  # noqa: BLE001
            return None, {}

    def _by_device(self) -> list[dict]:
        meter = self._meter
        if meter is None or not meter.devices:
            return []
        _, e1 = self._now()
        out = []
        for key, d in meter.devices.items():
            out.append(
                {
                    "key": key,
                    "kind": d.kind,
                    "index": d.index,
                    "uuid": d.uuid,
                    "name": d.name,
                    "energy_j": _sub(e1.get(key), self._e0.get(key)),
                    "method": d.energy_method,
                }
            )
        return out

    @property
    def gpus(self) -> list[dict]:
        """One dict per measured GPU: index, uuid, energy_j (None: n/a), method."""
        return [
            {k: r[k] for k in ("index", "uuid", "energy_j", "method")}
            for r in self._by_device()
            if r["kind"] == "gpu"
        ]

    @property
    def cpu(self) -> list[dict] | None:
        """RAPL zones (CPU packages, DRAM): key, name, energy_j, method; None when unmeasured."""
        rows = [
            {k: r[k] for k in ("key", "name", "energy_j", "method")}
            for r in self._by_device()
            if r["kind"] in ("cpu", "dram")
        ]
        return rows or None

    @property
    def energy_j(self) -> float | None:
        """GPU energy of the window in joules (running while open); None when n/a."""
        vals = [g["energy_j"] for g in self.gpus if g["energy_j"] is not None]
        return sum(vals) if vals else None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else time.time()
        return end - self.started_at

    @property
    def simulated(self) -> bool:
        return bool(self._meter is not None and self._meter.simulated)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "energy_j": self.energy_j,
            "gpus": self.gpus,
            "cpu": self.cpu,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "simulated": self.simulated,
        }

    def __repr__(self) -> str:
        e = self.energy_j
        fig = "n/a" if e is None else f"{e:.3f} J"
        state = "running" if self.running else "done"
        sim = " SIMULATED" if self.simulated else ""
        return f"<wattui.measure {self.name or ''!s} {state}: {fig}{sim}>"

    # ------------------------------------------------------------ to the recorder
    def _send(self) -> None:
        """Under a recorder (or once one attaches), the window becomes a session event."""
        values: dict = {
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "simulated": int(self.simulated),
        }
        if self.name:
            values["name"] = str(self.name)
        e = self.energy_j
        if e is not None:
            values["energy_j"] = e
        for g in self.gpus:
            if g["energy_j"] is not None:
                values[f"gpu{g['index']}_energy_j"] = g["energy_j"]
        cpu = [c["energy_j"] for c in self.cpu or () if c["energy_j"] is not None]
        if cpu:
            values["cpu_energy_j"] = sum(cpu)
        _report._emit(values, "measure")


def measure(name: str | None = None, *, synchronize: bool = False) -> Measurement:
    """Measure the energy of a block: ``with wattui.measure("eval") as m: ...``.

    Also ``@wattui.measure("step")`` and ``m = wattui.measure().begin() ... m.end()``.
    ``synchronize=True`` calls ``torch.cuda.synchronize()`` at both edges so queued GPU work
    is counted in the window it belongs to. Never raises."""
    if callable(name):  # bare @wattui.measure
        fn = name
        return Measurement(getattr(fn, "__name__", None))(fn)
    return Measurement(name, synchronize=synchronize)
