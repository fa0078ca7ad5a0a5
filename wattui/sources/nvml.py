"""NVIDIA GPUs through NVML (the ``nvidia-ml-py`` binding, module ``pynvml``).

Energy, per GPU, in order of preference:

* ``COUNTER``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta
  and newer). A step back is a reset (driver reload, GPU reset) when the counter
  restarted near zero, else jitter (no energy added); never a wrap.
* ``INTEGRATED``: where there is no counter, trapezoidal integration of the power read
  at every :meth:`NvmlSource.read` and :meth:`NvmlSource.poll_power`, each value
  timestamped at its read. Such a source says :attr:`NvmlSource.needs_fast_poll`; the
  sampler then reads it every <= 100 ms and polls its power every 20 ms in between.

Live watts are labelled with what NVML actually returns: where the driver has the
``NVML_FI_DEV_POWER_INSTANT`` field (``nvmlDeviceGetFieldValues``) it is read, so the
figure is the instantaneous power and the label is certain (integration then uses it);
else the ``NVML_FI_DEV_POWER_AVERAGE`` field (the 1 s average); otherwise
``nvmlDeviceGetPowerUsage``, labelled by architecture (Ampere except A100, Ada, Hopper and
newer: the 1 s average; older: instantaneous). Without any power reading but with a
counter, power is dE/dt over >= 0.5 s (``DERIVED``).

Shared GPUs: once :meth:`NvmlSource.follow_run` names the run's processes, every GPU
gets a second device, ``gpuN:run`` (kind ``share``, methods ``estimated``): the run's
share of the GPU's energy, split by SM utilisation per process
(``nvmlDeviceGetProcessUtilization``) with idle power shared (see ``shares.py``).
``MIG-`` entries in ``CUDA_VISIBLE_DEVICES`` select their parent GPU: energy and power
exist per whole GPU only, and the device's notes say so.

A call that is not supported (``NotSupported``, ``FunctionNotFound``, ``NoPermission``)
turns only that figure into ``None`` and a note in :class:`DeviceInfo.notes`; it is not
retried. Utilisation, memory, temperature and processes change slowly and are read at
most once per second; energy and power are read on every call.

``pynvml`` is imported only when a source is opened, so importing this module is free.
The binding's numbers and helpers are in ``nvml_lib.py``, `wattui doctor`'s probe in
``nvml_probe.py``. This module stays near 700 lines on purpose: it is one class and its
per-GPU state, which every reading path (batched fields, per-call fallback, power polls,
shares) shares; split, each part would reach into the others' state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

from wattui.sources import native_ticks
from wattui.sources.base import (
    AVERAGE_1S,
    COUNTER,
    DERIVED,
    ESTIMATED,
    INSTANT,
    INTEGRATED,
    DeviceInfo,
    DeviceReading,
    EnergyAccumulator,
    PowerIntegrator,
    PowerSource,
    SourceUnavailable,
    plausible_max_w,
    refresh_due,
)
from wattui.sources.native_ticks import FieldTicks
from wattui.sources.nvml_lib import (
    ERR_NOT_FOUND,
    FI_POWER_AVERAGE,
    FI_POWER_INSTANT,
    FI_TOTAL_ENERGY,
    P_DERIVED,
    P_FIELD,
    P_NONE,
    P_USAGE,
    PERMANENT,
    TYPE_UINT,
    TYPE_ULONGLONG,
    FieldLayout,
    err_name,
    field_value,
    gpus_of_pids_in,
    label_by_architecture,
    one_line,
    open_nvml,
    raw_field_values,
    raw_slow_calls,
    shutdown,
    text_of,
)
from wattui.sources.shares import RunShare, split_parts
from wattui.sources.visible import select_devices

__all__ = ["NvmlSource"]

SLOW_PERIOD_S = 1.0  # utilisation, memory, temperature, processes: at most this often
FAST_POLL_S = 0.1  # the period integration needs
DERIVED_WINDOW_S = 0.5  # dE/dt over at least this long


class _Tick(NamedTuple):
    """One tick's reads (see :meth:`NvmlSource.capture`)."""

    t_mono: float
    slow: tuple  # per GPU: (util, mem used, mem total, temperature, pids, SM % per pid)
    run: Any  # the run's PIDs then (full ticks), or None: no share this tick
    rcs: list[int] | None  # the field calls' return codes, when ``figures`` is their bytes
    figures: Any  # bytes of the field buffer, or per GPU (power W, energy J)


class _Gpu:
    """Per-GPU state. Plain attributes (slots) because read() touches them every tick."""

    __slots__ = (
        "index",
        "handle",
        "key",
        "name",
        "uuid",
        "arch",
        "power_limit_w",
        "energy_method",
        "power_method",
        "power_mode",
        "field_ids",
        "acc",
        "integ",
        "anchor",
        "derived_w",
        "unsupported",
        "notes",
        "util",
        "mem_used",
        "mem_total",
        "temp",
        "pids",
        "proc_sm",
        "util_seen",
        "share",
        "share_in",
        "share_prev",
        "mig",
        "batch",
        "batch_n",
        "batch_base",
        "batch_struct",
        "batch_energy",
        "batch_power",
    )

    def __init__(self, index: int, handle: Any):
        self.index = index
        self.handle = handle
        self.key = f"gpu{index}"
        self.name = f"GPU {index}"
        self.uuid = ""
        self.arch: int | None = None
        self.power_limit_w: float | None = None
        self.energy_method = COUNTER
        self.power_method = INSTANT
        self.power_mode = P_NONE
        self.field_ids: list[int] = []
        self.acc = EnergyAccumulator(wrap_at=None)  # NVML's counter does not wrap
        self.integ = PowerIntegrator()
        self.anchor: tuple[float, float] | None = None
        self.derived_w: float | None = None
        self.unsupported: dict[str, str] = {}  # figure -> NVML error name
        self.notes: list[str] = []
        self.util: float | None = None
        self.mem_used: float | None = None
        self.mem_total: float | None = None
        self.temp: float | None = None
        self.pids: tuple[int, ...] | None = None
        self.proc_sm: dict[int, float] = {}  # pid -> SM utilisation % (latest samples)
        self.util_seen = 0  # NVML timestamp (us) of the newest process sample seen
        self.share = RunShare()
        # the processes as the share last saw them: (pids, SM %, run's pids, procs, mine,
        # the split's parts)
        self.share_in: tuple = (None, None, None, None, None, None)
        self.share_prev: tuple = (None, None)  # (pids, the run's pids) at the last split
        self.mig: list[str] = []  # the MIG instances through which this GPU was selected
        # One nvmlDeviceGetFieldValues call per tick for the counter and the power field
        # (see NvmlSource._batch): a pointer to its fields in the source's field buffer
        # (None: no batch), how many, their byte offset there, each figure's slot or -1.
        self.batch: Any = None
        self.batch_n = 0
        self.batch_base = 0
        self.batch_struct: Any = None  # unpacks every field of the batch at once
        self.batch_energy = -1
        self.batch_power = -1

    def mark(self, figure: str, err: BaseException, detail: str = "") -> None:
        """Record that ``figure`` is n/a on this GPU; it is not asked for again."""
        if figure in self.unsupported:
            return
        why = err_name(err)
        self.unsupported[figure] = why
        self.notes.append(f"{figure}: n/a (NVML {why}){detail}")


class NvmlSource(PowerSource):
    """Every selected NVIDIA GPU of this machine, read through NVML.

    ``indices``: NVML indices to measure (wins over everything else). Otherwise the GPUs
    a run with ``CUDA_VISIBLE_DEVICES=visible`` would use; ``visible=None`` takes the
    variable from this process's environment (unset: all GPUs) unless ``use_env=False``,
    which means all GPUs. ``poll_hint_s`` is the period the sampler intends to use.
    Raises :class:`SourceUnavailable` (one line: why and how to fix) when NVML cannot
    start or no GPU is selected.
    """

    name = "nvml"

    def __init__(
        self,
        indices: list[int] | None = None,
        visible: str | None = None,
        poll_hint_s: float = 0.2,
        *,
        use_env: bool = True,
        slow_period_s: float = SLOW_PERIOD_S,
    ):
        self._nv: Any = None
        self._ticks: FieldTicks | None = None
        self._gpus: list[_Gpu] = []
        self.poll_hint_s = float(poll_hint_s)
        self.slow_period_s = max(float(slow_period_s), 0.0)
        self._last_slow: float | None = None
        self.skipped: dict[int, str] = {}  # GPUs NVML lists but cannot open: index -> why
        self._run_pids: Callable[[], Any] | None = None
        self._mig: dict[int, list[str]] = {}  # parent GPU index -> MIG entries selecting it
        self._raw_fields: Any = None
        self._raw_slow: Any = None  # RawSlowCalls, or None: the binding's calls
        self._field_struct: Any = None
        self._fields: Any = None  # every GPU's batched fields, one buffer (see _lay_out)
        self._layout: FieldLayout | None = None
        self._deferred = False  # capture() copies the fields; decode() makes the readings
        self._calls: list[tuple[Any, int, Any]] = []  # (handle, fields, pointer) per GPU
        self._slow: tuple = ()  # per GPU: the slowly changing figures as last read
        self._run_ids: Any = None  # the run's PIDs as last handed over, and as a set
        self._run_set: set[int] = set()
        nv = open_nvml()
        self._nv = nv
        try:
            self.driver = self._driver_version()
            chosen, handles = self._choose(indices, visible, use_env)
            self._gpus = [self._open_gpu(i, handles[i]) for i in chosen]
            self._raw_fields, self._field_struct = raw_field_values(nv)
            self._raw_slow = raw_slow_calls(nv)
            batched = [(g, ids) for g in self._gpus if (ids := self._batch(g))]
            self._lay_out(batched)
            for g in self._gpus:
                g.mig = self._mig.get(g.index, [])
                if g.mig:
                    g.notes.append(
                        f"MIG: selected through {', '.join(g.mig)}; energy and power are "
                        "per parent GPU (every instance on it)"
                    )
        except SourceUnavailable:
            self.close()
            raise
        except Exception as e:  # an NVML error while enumerating: still one line
            self.close()
            raise SourceUnavailable(
                f"NVML started but listing GPUs failed ({one_line(e) or type(e).__name__}): "
                "check that `nvidia-smi` works"
            ) from None

    # ----------------------------------------------------------------- opening
    def _driver_version(self) -> str | None:
        try:
            v = self._nv.nvmlSystemGetDriverVersion()
        except self._nv.NVMLError:
            return None
        return v.decode() if isinstance(v, bytes) else str(v)

    def _choose(
        self, indices: list[int] | None, visible: str | None, use_env: bool
    ) -> tuple[list[int], dict[int, Any]]:
        nv = self._nv
        count = nv.nvmlDeviceGetCount()
        if count == 0:
            raise SourceUnavailable("NVML sees no GPU: check that `nvidia-smi` lists one")
        handles: dict[int, Any] = {}
        for i in range(count):
            try:
                handles[i] = nv.nvmlDeviceGetHandleByIndex(i)
            except nv.NVMLError as e:  # e.g. NoPermission for a GPU outside our cgroup
                self.skipped[i] = err_name(e)
        if indices is not None:
            bad = [i for i in indices if not 0 <= i < count]
            if bad:
                raise SourceUnavailable(
                    f"no GPU {bad[0]} on this machine: NVML lists {count} "
                    f"(indices 0..{count - 1}); pick from those"
                )
            chosen = list(dict.fromkeys(indices))
        else:
            chosen = self._select_visible(nv, count, handles, visible, use_env)
        closed = [i for i in chosen if i not in handles]
        if closed:
            i = closed[0]
            raise SourceUnavailable(
                f"GPU {i} cannot be opened (NVML {self.skipped[i]}): run wattui as root or "
                "where the GPU is accessible, or measure other GPUs (CUDA_VISIBLE_DEVICES)"
            )
        return chosen, handles

    def _select_visible(
        self, nv: Any, count: int, handles: dict[int, Any], visible: str | None, use_env: bool
    ) -> list[int]:
        env_value = visible
        if env_value is None and use_env:
            env_value = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env_value is None:
            chosen = [i for i in range(count) if i in handles]
            if not chosen:
                why = ", ".join(sorted(set(self.skipped.values())))
                raise SourceUnavailable(
                    f"NVML lists {count} GPU(s) but none can be opened (NVML {why}): run "
                    "wattui as root or where the GPUs are accessible"
                )
            return chosen
        all_devices = []
        for i in range(count):
            try:
                uuid = text_of(nv.nvmlDeviceGetUUID(handles[i])) if i in handles else ""
            except nv.NVMLError:
                uuid = ""
            all_devices.append((i, uuid))
        chosen = select_devices(env_value, all_devices, self._mig_parent)
        if not chosen:
            raise SourceUnavailable(
                f"CUDA_VISIBLE_DEVICES={env_value!r} selects no GPU, so there is nothing to "
                "measure: unset it, or list GPUs by index or UUID (e.g. 0,1)"
            )
        return chosen

    def _mig_parent(self, token: str) -> int | None:
        """NVML index of the GPU holding MIG instance ``token`` (``MIG-<uuid>``, or the
        older ``MIG-GPU-<uuid>/<gi>/<ci>``), or None."""
        nv = self._nv
        try:
            if "/" in token:  # the parent's UUID is spelled out
                parent = nv.nvmlDeviceGetHandleByUUID(token[4:].split("/")[0])
            else:
                parent = nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
                    nv.nvmlDeviceGetHandleByUUID(token)
                )
            index = int(nv.nvmlDeviceGetIndex(parent))
        except nv.NVMLError:
            return None
        self._mig.setdefault(index, []).append(token)
        return index

    def _open_gpu(self, index: int, handle: Any) -> _Gpu:
        nv = self._nv
        g = _Gpu(index, handle)
        try:
            g.name = text_of(nv.nvmlDeviceGetName(handle))
        except nv.NVMLError:
            pass
        try:
            g.uuid = text_of(nv.nvmlDeviceGetUUID(handle))
        except nv.NVMLError:
            pass
        try:
            g.arch = int(nv.nvmlDeviceGetArchitecture(handle))
        except nv.NVMLError as e:
            g.mark("architecture", e)

        # Energy: the counter if there is one.
        try:
            nv.nvmlDeviceGetTotalEnergyConsumption(handle)
            g.energy_method = COUNTER
        except nv.NVMLError as e:
            g.energy_method = INTEGRATED
            g.mark("energy counter", e, ": integrating power read every 20 ms")

        # Live power, with a label we can stand behind: the instantaneous field first (what
        # integration needs, and what the live figure should be), then the 1 s average one.
        prefer = (FI_POWER_INSTANT, FI_POWER_AVERAGE)
        fields_ok: dict[int, bool] = {}
        try:
            vals = nv.nvmlDeviceGetFieldValues(handle, list(prefer))
            fields_ok = {int(v.fieldId): v.nvmlReturn == 0 for v in vals}
        except nv.NVMLError as e:
            g.mark("power fields", e, ": live-power label taken from the architecture")
        chosen_field = next((f for f in prefer if fields_ok.get(f)), None)
        if chosen_field is not None:
            g.power_mode = P_FIELD
            g.field_ids = [chosen_field]
            g.power_method = AVERAGE_1S if chosen_field == FI_POWER_AVERAGE else INSTANT
        else:
            if fields_ok and "power fields" not in g.unsupported:
                g.unsupported["power fields"] = "NotSupported"
                g.notes.append(
                    "power fields: n/a (NVML NotSupported): live-power label taken from "
                    "the architecture"
                )
            try:
                nv.nvmlDeviceGetPowerUsage(handle)
                g.power_mode = P_USAGE
                g.power_method = label_by_architecture(g.arch, g.name)
            except nv.NVMLError as e:
                if getattr(e, "value", None) not in PERMANENT:
                    # A passing error at open: keep asking on every read.
                    g.power_mode = P_USAGE
                    g.power_method = label_by_architecture(g.arch, g.name)
                elif g.energy_method == COUNTER:
                    g.power_mode = P_DERIVED
                    g.power_method = DERIVED
                    g.mark("power", e, ": live power is dE/dt of the energy counter")
                else:
                    g.power_mode = P_NONE
                    g.mark("power", e, ": neither energy nor power can be read")

        # Power limit (static): the enforced one, else the management one.
        limit_err: BaseException | None = None
        for fn in (nv.nvmlDeviceGetEnforcedPowerLimit, nv.nvmlDeviceGetPowerManagementLimit):
            try:
                g.power_limit_w = fn(handle) / 1000.0
                limit_err = None
                break
            except nv.NVMLError as e:
                limit_err = e
        if limit_err is not None:
            g.mark("power limit", limit_err)
        # mJ per second the counter can plausibly run: tells a reset from jitter
        g.acc.max_rate = plausible_max_w("gpu", g.power_limit_w) * 1000.0
        return g

    def _batch(self, g: _Gpu) -> list[int]:
        """The field ids to read the counter (``NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION``, the
        same mJ as ``nvmlDeviceGetTotalEnergyConsumption``) and the power field with one
        call, where a first call shows the driver has them; [] for the separate calls."""
        if self._raw_fields is None or g.power_mode == P_USAGE:
            return []  # (power through nvmlDeviceGetPowerUsage: the separate calls)
        ids = []
        if g.energy_method == COUNTER:
            ids.append(FI_TOTAL_ENERGY)
        if g.power_mode == P_FIELD:
            ids.extend(g.field_ids)
        if not ids:
            return []
        arr = (self._field_struct * len(ids))()
        for i, fid in enumerate(ids):
            arr[i].fieldId = fid
        try:
            rc = self._raw_fields(g.handle, len(ids), arr)
        except Exception:  # noqa: BLE001 - no batch; the binding's calls still work
            return []
        if rc != 0 or any(arr[i].nvmlReturn != 0 for i in range(len(ids))):
            return []  # a field the driver lacks: the separate calls, as before
        return ids

    def _lay_out(self, batched: list[tuple[_Gpu, list[int]]]) -> None:
        """One field buffer for every batched GPU, each GPU's fields at its own offset:
        a tick's reads fill it, and one copy of its bytes keeps them for decode()."""
        import ctypes

        if not batched:
            return
        layout = self._layout = FieldLayout(self._field_struct)
        buf = self._fields = (self._field_struct * sum(len(ids) for _, ids in batched))()
        slot = 0
        for g, ids in batched:
            for i, fid in enumerate(ids):
                buf[slot + i].fieldId = fid
            g.batch_base = slot * layout.size
            g.batch = ctypes.byref(buf, g.batch_base)
            g.batch_n = len(ids)
            g.batch_energy = ids.index(FI_TOTAL_ENERGY) if FI_TOTAL_ENERGY in ids else -1
            g.batch_power = ids.index(g.field_ids[0]) if g.power_mode == P_FIELD else -1
            g.batch_struct = layout.struct_for(
                [TYPE_ULONGLONG if fid == FI_TOTAL_ENERGY else TYPE_UINT for fid in ids]
            )
            slot += len(ids)
        self._calls = [(g.handle, g.batch_n, g.batch) for g in self._gpus if g.batch is not None]
        # Reads can wait for decode() only where every GPU is batched and none integrates
        # power (the polls between reads integrate at once, so reads must be decoded first).
        self._deferred = len(self._calls) == len(self._gpus) and not self.needs_fast_poll

    def _read_batch(self, g: _Gpu, t_mono: float) -> tuple[float | None, float | None]:
        """(power W, energy J) from one field call, now."""
        rc = self._raw_fields(g.handle, g.batch_n, g.batch)
        return self._decode_batch(g, self._fields, rc, t_mono)

    def _decode_batch(self, g: _Gpu, buf: Any, rc: int, t_mono: float) -> tuple[float | None, float | None]:
        """(power W, energy J) from a field call's return code and its fields in ``buf``
        (the field buffer, or a copy of its bytes). A failed call or a field that became
        unreadable drops the batch: the separate calls take over from the next tick."""
        power = energy = None
        if rc != 0:
            self._drop_batch(g)
            return None, None
        # (value type, return code, value) of each field, the value read as the type NVML
        # documents for it; a field of another type is read again as that type
        vals = g.batch_struct.unpack_from(buf, g.batch_base)
        if g.batch_power >= 0:
            k = 3 * g.batch_power
            ret, v = vals[k + 1], vals[k + 2]
            if ret == 0 and vals[k] != TYPE_UINT:
                ret, v = self._layout.read(buf, g.batch_base, g.batch_power, TYPE_UINT)
            if ret == 0:
                power = v / 1000.0
        if g.batch_energy >= 0:
            k = 3 * g.batch_energy
            ret, v = vals[k + 1], vals[k + 2]
            if ret == 0 and vals[k] != TYPE_ULONGLONG:
                ret, v = self._layout.read(buf, g.batch_base, g.batch_energy, TYPE_ULONGLONG)
            if ret == 0:
                energy = g.acc.update(v, t_mono) / 1000.0
            else:
                self._failed(g, "energy counter", self._nv.NVMLError(ret))
                if "energy counter" in g.unsupported:
                    self._drop_batch(g)
            if g.power_mode == P_DERIVED and energy is not None:
                power = self._derive(g, t_mono, energy)
        elif power is not None:  # no counter: integrate
            energy = g.integ.update(t_mono, power)
        return power, energy

    def _drop_batch(self, g: _Gpu) -> None:
        g.batch = None
        self._deferred = False  # from the next capture on, every GPU is read and decoded at once

    # ------------------------------------------------------------------ facts
    @property
    def needs_fast_poll(self) -> bool:
        """True when any GPU integrates power: read() must then run every <= 100 ms."""
        return any(g.energy_method == INTEGRATED for g in self._gpus)

    @property
    def recommended_period_s(self) -> float:
        return min(self.poll_hint_s, FAST_POLL_S) if self.needs_fast_poll else self.poll_hint_s

    @property
    def indices(self) -> list[int]:
        return [g.index for g in self._gpus]

    def follow_run(self, run_pids: Callable[[], Any], idle_w: dict[str, float] | None = None) -> None:
        """From now on also report each GPU's share that belongs to the run whose PIDs
        ``run_pids()`` returns (device ``gpuN:run``, estimated). ``idle_w`` (device key ->
        W, e.g. a measured baseline) replaces the lowest power seen as idle power."""
        for g in self._gpus:
            g.share = RunShare((idle_w or {}).get(g.key))
        self._run_pids = run_pids

    def devices(self) -> list[DeviceInfo]:
        out = []
        for g in self._gpus:
            notes = list(g.notes)
            if g.acc.resets:
                notes.append(
                    f"energy counter reset {g.acc.resets}x (driver reload or GPU reset): "
                    "energy between the last read and each reset is missing"
                )
            if g.acc.jitters:
                notes.append(
                    f"energy counter read back {g.acc.jitters}x (out-of-order reads): "
                    "taken as jitter, no energy added"
                )
            if g.acc.spikes:
                notes.append(
                    f"energy counter jumped ahead beyond any plausible power {g.acc.spikes}x: "
                    "those reads were ignored"
                )
            out.append(
                DeviceInfo(
                    key=g.key,
                    kind="gpu",
                    index=g.index,
                    name=g.name,
                    uuid=g.uuid,
                    driver=self.driver,
                    power_limit_w=g.power_limit_w,
                    energy_method=g.energy_method,
                    power_method=g.power_method,
                    simulated=False,
                    notes=tuple(notes),
                )
            )
            if self._run_pids is not None:
                out.append(
                    DeviceInfo(
                        key=f"{g.key}:run",
                        kind="share",
                        index=g.index,
                        name=f"the run's share of {g.name}",
                        uuid=g.uuid,
                        driver=self.driver,
                        energy_method=ESTIMATED,
                        power_method=ESTIMATED,
                        notes=(
                            "estimated: the GPU's energy split by SM utilisation per process, "
                            "idle power shared evenly",
                        ),
                    )
                )
        return out

    # ------------------------------------------------------------------ reading
    def read(self, t_mono: float) -> list[DeviceReading]:
        return self.decode(self.capture(t_mono))

    def capture(self, t_mono: float, full: bool = True) -> _Tick:
        """A tick's reads, as the library returns them: where every GPU's figures come in
        one field call (and none integrates), only the calls and a copy of the field
        buffer's bytes; :meth:`decode` makes the readings later (in order, a second's at
        once). Otherwise the figures, read and decoded now.

        Utilisation, memory, temperature and processes are read on full ticks about
        ``slow_period_s`` apart (light ticks reuse them; a light tick reads them only if
        no full one came for twice that), and the run's share is a reading of full
        ticks only: it splits the energy by the processes' use, which NVML gives about once
        a second, so finer rows would only repeat the same split."""
        if self._nv is None:
            raise SourceUnavailable("the NVML source was closed")
        run = self._read_extras(t_mono, full)
        if self._deferred:
            fn = self._raw_fields
            rcs = [fn(h, n, ref) for h, n, ref in self._calls]
            return _Tick(t_mono, self._slow, run, rcs, bytes(self._fields))
        figures = [
            self._read_batch(g, t_mono) if g.batch is not None else self._read_calls(g, t_mono)
            for g in self._gpus
        ]
        return _Tick(t_mono, self._slow, run, None, figures)

    def _read_extras(self, t_mono: float, full: bool) -> Any:
        """What a tick reads besides the fields: the slow figures when due (kept in
        ``_slow``) and, on full ticks, the run's PIDs (returned; None on light ticks)."""
        if refresh_due(self._last_slow, t_mono, self.slow_period_s, full):
            self._last_slow = t_mono
            for g in self._gpus:
                self._read_slow(g)
            self._slow = tuple((g.util, g.mem_used, g.mem_total, g.temp, g.pids, g.proc_sm)
                               for g in self._gpus)
        if not full or self._run_pids is None:
            return None
        try:
            return self._run_pids()
        except Exception:  # noqa: BLE001 - the run's tree could not be read this tick
            return ()

    def native_ticks(self, t0: float, slot_s: float, seed: int, wake_fd: int) -> FieldTicks | None:
        """The light ticks' field calls in a native thread (:mod:`native_ticks`), where
        every GPU is read with one field call and none integrates power (the ticks whose
        decoding can wait); None otherwise, or without the compiled ticker."""
        if self._nv is None or not self._deferred or not native_ticks.available():
            return None
        import ctypes

        def address(p: Any) -> int:
            return ctypes.cast(p, ctypes.c_void_p).value or 0

        calls = [(address(g.handle), g.batch_n, g.batch_base) for g in self._gpus]
        if not all(c[0] for c in calls):
            return None
        if not self._slow:  # light ticks carry them: read them once if no tick did yet
            self._read_extras(t0, False)

        def make(t_mono: float, rcs: list[int], raw: bytes) -> _Tick:
            return _Tick(t_mono, self._slow, None, rcs, raw)  # the slow figures as last read

        def complete(tick: _Tick) -> _Tick:
            run = self._read_extras(tick.t_mono, True)
            return tick._replace(slow=self._slow, run=run)

        self._close_ticks()
        self._ticks = FieldTicks(
            address(self._raw_fields), calls, bytes(self._fields),
            field_size=ctypes.sizeof(self._field_struct), t0=t0, slot_s=slot_s, seed=seed, wake_fd=wake_fd,
            make=make, complete=complete, ok=lambda: self._deferred and self._nv is not None,
        )
        return self._ticks

    def _close_ticks(self) -> None:
        ticks, self._ticks = self._ticks, None
        if ticks is not None:
            ticks.close()

    def decode(self, tick: _Tick) -> list[DeviceReading]:
        """The readings of a tick that :meth:`capture` took (ticks in the order taken)."""
        t_mono = tick.t_mono
        if tick.rcs is not None:
            raw = tick.figures
            figures = [
                self._decode_batch(g, raw, rc, t_mono) for g, rc in zip(self._gpus, tick.rcs)
            ]
        else:
            figures = tick.figures
        run_pids: set[int] | None = None
        if tick.run is not None:
            if tick.run is not self._run_ids:
                self._run_ids = tick.run
                try:
                    self._run_set = {int(p) for p in tick.run}
                except (TypeError, ValueError):
                    self._run_set = set()
            run_pids = self._run_set
        out = []
        for g, (power, energy), (util, mem_used, mem_total, temp, pids, proc_sm) in zip(
            self._gpus, figures, tick.slow
        ):
            out.append(
                DeviceReading(
                    key=g.key,
                    energy_j=energy,
                    power_w=power,
                    energy_method=g.energy_method,
                    power_method=g.power_method,
                    util_pct=util,
                    mem_used_b=mem_used,
                    mem_total_b=mem_total,
                    temp_c=temp,
                    pids=pids,
                )
            )
            if run_pids is not None:
                out.append(self._share_reading(g, t_mono, energy, power, run_pids, pids, proc_sm))
        return out

    def _read_calls(self, g: _Gpu, t_mono: float) -> tuple[float | None, float | None]:
        """(power W, energy J) with one binding call per figure."""
        nv = self._nv
        power: float | None = None
        energy: float | None = None
        mode = g.power_mode
        if mode == P_FIELD:
            try:
                p = field_value(nv.nvmlDeviceGetFieldValues(g.handle, g.field_ids)[0])
                power = None if p is None else p / 1000.0
            except nv.NVMLError as e:
                self._failed(g, "power", e)
        elif mode == P_USAGE:
            try:
                power = nv.nvmlDeviceGetPowerUsage(g.handle) / 1000.0
            except nv.NVMLError as e:
                self._failed(g, "power", e)
        if g.energy_method == COUNTER:
            if "energy counter" not in g.unsupported:
                try:
                    energy = g.acc.update(nv.nvmlDeviceGetTotalEnergyConsumption(g.handle), t_mono) / 1000.0
                except nv.NVMLError as e:
                    self._failed(g, "energy counter", e)
            if mode == P_DERIVED and energy is not None:
                power = self._derive(g, t_mono, energy)
        elif power is not None:
            energy = g.integ.update(t_mono, power)
        return power, energy

    def poll_power(self, t_mono: float) -> None:
        """Between reads: the power of every GPU without a counter, into its integral."""
        nv = self._nv
        if nv is None:
            return
        for g in self._gpus:
            if g.energy_method != INTEGRATED:
                continue
            if g.batch is not None:
                self._read_batch(g, t_mono)  # integrates
                continue
            power: float | None = None
            try:
                if g.power_mode == P_FIELD:
                    p = field_value(nv.nvmlDeviceGetFieldValues(g.handle, g.field_ids)[0])
                    power = None if p is None else p / 1000.0
                elif g.power_mode == P_USAGE:
                    power = nv.nvmlDeviceGetPowerUsage(g.handle) / 1000.0
            except nv.NVMLError as e:
                self._failed(g, "power", e)
            if power is not None:
                g.integ.update(t_mono, power)

    @staticmethod
    def _share_reading(
        g: _Gpu,
        t: float,
        energy: float | None,
        power: float | None,
        run_pids: set[int],
        pids: tuple[int, ...] | None,
        proc_sm: dict[int, float],
    ) -> DeviceReading:
        # the processes on the GPU and the run's, over the interval since the last split:
        # those listed at either end (a process that left just before a full tick, at the
        # session's end say, still gets its part of the second it ran in)
        prev_pids, prev_run = g.share_prev
        g.share_prev = (pids, run_pids)
        if pids is not None and prev_pids and prev_pids != pids:
            pids = pids + tuple(p for p in prev_pids if p not in pids)
        if prev_run is not None and prev_run is not run_pids and not prev_run <= run_pids:
            run_pids = run_pids | prev_run
        last = g.share_in  # the processes change about once a second: reuse what they give
        if last[0] is pids and last[1] is proc_sm and last[2] is run_pids:
            procs, mine, parts = last[3], last[4], last[5]
        else:
            procs = None if pids is None else {p: proc_sm.get(p) for p in pids}
            mine = None if pids is None else tuple(p for p in pids if p in run_pids)
            parts = None if procs is None else split_parts(procs, run_pids)
            g.share_in = (pids, proc_sm, run_pids, procs, mine, parts)
        total = g.share.update(t, energy, power, procs, run_pids, parts)
        frac = g.share.fraction
        return DeviceReading(
            key=f"{g.key}:run",
            energy_j=total,
            power_w=None if power is None or frac is None else power * frac,
            energy_method=ESTIMATED,
            power_method=ESTIMATED,
            util_pct=None if frac is None else 100.0 * frac,
            pids=mine,
        )

    @staticmethod
    def _derive(g: _Gpu, t: float, energy: float) -> float | None:
        if g.anchor is None:
            g.anchor = (t, energy)
            return None
        t0, e0 = g.anchor
        if t - t0 >= DERIVED_WINDOW_S:
            g.derived_w = (energy - e0) / (t - t0)
            g.anchor = (t, energy)
        return g.derived_w

    def _failed(self, g: _Gpu, figure: str, err: BaseException) -> None:
        """A figure failed at read time: permanent errors are cached, others are a
        one-tick n/a (the counter or the integrator bridges the gap on the next read)."""
        if getattr(err, "value", None) in PERMANENT:
            g.mark(figure, err)
            if figure == "power" and g.power_mode != P_DERIVED:
                g.power_mode = P_NONE

    def _slow_call(self, g: _Gpu, figure: str, fn: Any, *args: Any) -> Any:
        if figure in g.unsupported:
            return None
        try:
            return fn(g.handle, *args)
        except self._nv.NVMLError as e:
            self._failed(g, figure, e)
            return None

    def _raw_call(self, g: _Gpu, figure: str, fn: Any, *args: Any) -> bool:
        """A :class:`RawSlowCalls` call: whether it gave the figure (errors as _slow_call's)."""
        if figure in g.unsupported:
            return False
        rc = fn(g.handle, *args)
        if rc == 0:
            return True
        self._failed(g, figure, self._nv.NVMLError(rc))
        return False

    def _read_slow(self, g: _Gpu) -> None:
        nv = self._nv
        raw = self._raw_slow
        if raw is not None:
            call = self._raw_call
            g.util = float(raw.util.gpu) if call(g, "utilisation", raw.util_fn, raw.util_ref) else None
            g.mem_used, g.mem_total = (
                (float(raw.mem.used), float(raw.mem.total))
                if call(g, "memory", raw.mem_fn, raw.mem_ref) else (None, None)
            )
            g.temp = (float(raw.temp.value)
                      if call(g, "temperature", raw.temp_fn, raw.gpu_sensor, raw.temp_ref) else None)
        else:
            u = self._slow_call(g, "utilisation", nv.nvmlDeviceGetUtilizationRates)
            g.util = None if u is None else float(u.gpu)
            m = self._slow_call(g, "memory", nv.nvmlDeviceGetMemoryInfo)
            g.mem_used, g.mem_total = (None, None) if m is None else (float(m.used), float(m.total))
            t = self._slow_call(g, "temperature", nv.nvmlDeviceGetTemperature, nv.NVML_TEMPERATURE_GPU)
            g.temp = None if t is None else float(t)
        g.pids = self._read_pids(g, raw)
        if self._run_pids is not None and g.pids:
            self._read_process_utilisation(g)

    def _read_pids(self, g: _Gpu, raw: Any) -> tuple[int, ...] | None:
        """The processes on the GPU (None where they cannot be listed)."""
        if raw is not None and raw.procs_fn is not None and "processes" not in g.unsupported:
            raw.procs_n.value = len(raw.procs)
            rc = raw.procs_fn(g.handle, raw.procs_n_ref, raw.procs)
            if rc == 0:
                procs = raw.procs
                return tuple(int(procs[i].pid) for i in range(raw.procs_n.value))
            if rc != raw.insufficient:
                self._failed(g, "processes", self._nv.NVMLError(rc))
                return None
        procs = self._slow_call(g, "processes", self._nv.nvmlDeviceGetComputeRunningProcesses)
        return None if procs is None else tuple(int(p.pid) for p in procs)

    def _read_process_utilisation(self, g: _Gpu) -> None:
        """SM utilisation per process since the last call (NVML keeps a short history of
        samples; NotFound means no process ran a kernel since then)."""
        if "process utilisation" in g.unsupported:
            return
        nv = self._nv
        try:
            samples = nv.nvmlDeviceGetProcessUtilization(g.handle, g.util_seen)
        except nv.NVMLError as e:
            if getattr(e, "value", None) == ERR_NOT_FOUND:
                g.proc_sm = {}
            else:
                self._failed(g, "process utilisation", e)
            return
        sums: dict[int, list[float]] = {}
        for smp in samples:
            sums.setdefault(int(smp.pid), []).append(float(smp.smUtil))
            g.util_seen = max(g.util_seen, int(smp.timeStamp))
        g.proc_sm = {pid: sum(v) / len(v) for pid, v in sums.items()}

    def gpus_of_pids(self, pids: set[int]) -> list[int] | None:
        """Indices of this source's GPUs running any of ``pids`` (see :func:`gpus_of_pids`)."""
        return gpus_of_pids_in(self._nv, [(g.index, g.handle) for g in self._gpus], pids)

    def close(self) -> None:
        self._close_ticks()  # before shutdown: the native thread calls into NVML
        nv, self._nv = self._nv, None
        if nv is not None:
            shutdown(nv)


