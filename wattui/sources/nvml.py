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
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

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
)
from wattui.sources.shares import RunShare
from wattui.sources.visible import select_devices

__all__ = [
    "NvmlSource",
    "gpus_of_pids",
    "nvml_probe",
    "select_devices",
]

SLOW_PERIOD_S = 1.0  # utilisation, memory, temperature, processes: at most this often
FAST_POLL_S = 0.1  # the period integration needs
DERIVED_WINDOW_S = 0.5  # dE/dt over at least this long

# NVML numbers, repeated here so that importing this module never needs pynvml.
_ERR_NOT_SUPPORTED = 3
_ERR_NO_PERMISSION = 4
_ERR_NOT_FOUND = 6
_ERR_FUNCTION_NOT_FOUND = 13
_PERMANENT = (_ERR_NOT_SUPPORTED, _ERR_NO_PERMISSION, _ERR_FUNCTION_NOT_FOUND)
_FI_TOTAL_ENERGY = 83
_FI_POWER_AVERAGE = 185
_FI_POWER_INSTANT = 186
_ARCH_AMPERE = 7
_ARCH_UNKNOWN = 0xFFFFFFFF
_ARCH_NAMES = {
    2: "Kepler",
    3: "Maxwell",
    4: "Pascal",
    5: "Volta",
    6: "Turing",
    7: "Ampere",
    8: "Ada",
    9: "Hopper",
    10: "Blackwell",
    13: "Rubin",
}
_VALUE_ATTR = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}

# power read modes
_P_NONE, _P_FIELD, _P_USAGE, _P_DERIVED = 0, 1, 2, 3

# How to fix each figure that is n/a (for `wattui doctor`).
_FIX = {
    "energy counter": (
        "nothing to do: wattui integrates power read every 20 ms instead (slightly less "
        "exact); Volta or newer GPUs with a current driver have the counter"
    ),
    "power": "update the NVIDIA driver; on a vGPU ask the host's admin to expose power",
    "power fields": (
        "update the NVIDIA driver (recent drivers name the power they return via "
        "NVML_FI_DEV_POWER_INSTANT/AVERAGE); until then the label comes from the architecture"
    ),
    "architecture": "update the NVIDIA driver; the live-power label assumes instantaneous",
    "utilisation": "not needed for energy; update the driver to see it",
    "memory": "not needed for energy; update the driver to see it",
    "temperature": "not needed for energy; update the driver to see it",
    "power limit": "not needed for energy; update the driver to see it",
    "processes": (
        "run wattui as root or as the job's user, in the host's PID namespace, to see "
        "which processes use the GPU"
    ),
    "process utilisation": (
        "needed only to split a shared GPU's energy between processes; update the driver "
        "or run wattui as root"
    ),
}
_FIX_NO_PERMISSION = "run wattui as root or ask the admin for access to this NVML call"


def _import_pynvml() -> Any:
    try:
        import pynvml  # noqa: PLC0415 - imported lazily on purpose
    except ImportError as e:  # pragma: no cover - the dependency is declared
        raise SourceUnavailable(
            "the NVML binding is not installed (no module 'pynvml'): pip install nvidia-ml-py"
        ) from e
    return pynvml


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _init_failure(nv: Any, err: BaseException) -> tuple[str, str]:
    """(why, how to fix) for a failed nvmlInit."""
    v = getattr(err, "value", None)
    if v == nv.NVML_ERROR_LIBRARY_NOT_FOUND:
        return (
            "no NVIDIA driver library (libnvidia-ml.so.1 not found)",
            "install the NVIDIA driver on a machine with an NVIDIA GPU, or try wattui "
            "without one using --simulate",
        )
    if v == nv.NVML_ERROR_DRIVER_NOT_LOADED:
        return (
            "the NVIDIA kernel driver is not loaded (NVML: Driver Not Loaded)",
            "check `nvidia-smi`; load the driver (`sudo modprobe nvidia`) or reboot after "
            "installing it; in a container run with --gpus all",
        )
    if v == nv.NVML_ERROR_NO_PERMISSION:
        return (
            "no permission to open the NVIDIA devices (/dev/nvidia*)",
            "add your user to the group that owns /dev/nvidia* or run wattui as root",
        )
    if v == nv.NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return (
            "the NVML library and the loaded kernel driver differ (driver updated without reboot)",
            "reboot, or reload the nvidia kernel modules",
        )
    return (
        f"NVML could not start ({_one_line(err) or type(err).__name__})",
        "check that `nvidia-smi` works",
    )


def _open_nvml() -> Any:
    """Import pynvml and initialise NVML, or raise SourceUnavailable (one line)."""
    nv = _import_pynvml()
    try:
        nv.nvmlInit()
    except Exception as e:  # NVMLError, or anything odd from loading the library
        why, fix = _init_failure(nv, e)
        raise SourceUnavailable(f"{why}: {fix}") from None
    return nv


def _shutdown(nv: Any) -> None:
    try:
        nv.nvmlShutdown()
    except Exception:  # noqa: BLE001 - closing must not fail
        pass


def _err_name(err: BaseException) -> str:
    name = type(err).__name__
    return name[len("NVMLError_") :] if name.startswith("NVMLError_") else name


def _field_value(v: Any) -> float | None:
    if v.nvmlReturn != 0:
        return None
    return float(getattr(v.value, _VALUE_ATTR.get(v.valueType, "uiVal")))


def _raw_field_values(nv: Any) -> tuple[Any, Any]:
    """The C function ``nvmlDeviceGetFieldValues`` and a plain ctypes twin of pynvml's
    ``c_nvmlFieldValue_t`` (same fields; pynvml's class formats on every attribute read),
    so a tick's reads skip the binding's per-call array and wrapper; (None, None) where
    this pynvml lacks either (the binding's own calls are used then)."""
    import ctypes

    try:
        fn = nv._nvmlGetFunctionPointer("nvmlDeviceGetFieldValues")
        struct = type("_FieldValue", (ctypes.Structure,), {"_fields_": nv.c_nvmlFieldValue_t._fields_})
    except Exception:  # noqa: BLE001 - an older or newer binding: use its public calls
        return None, None
    return fn, struct


def _label_by_architecture(arch: int | None, name: str) -> str:
    """What nvmlDeviceGetPowerUsage returns: a 1 s average on Ampere (except A100), Ada,
    Hopper and newer; instantaneous on older parts."""
    if arch is None or arch == _ARCH_UNKNOWN or arch < _ARCH_AMPERE:
        return INSTANT
    if arch == _ARCH_AMPERE and "A100" in name.upper():
        return INSTANT
    return AVERAGE_1S


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
        "mig",
        "batch",
        "batch_n",
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
        self.power_mode = _P_NONE
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
        self.mig: list[str] = []  # the MIG instances through which this GPU was selected
        # One nvmlDeviceGetFieldValues call per tick for the counter and the power field
        # (see NvmlSource._batch): the field array, its length, each figure's slot or -1.
        self.batch: Any = None
        self.batch_n = 0
        self.batch_energy = -1
        self.batch_power = -1

    def mark(self, figure: str, err: BaseException, detail: str = "") -> None:
        """Record that ``figure`` is n/a on this GPU; it is not asked for again."""
        if figure in self.unsupported:
            return
        why = _err_name(err)
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
        self._gpus: list[_Gpu] = []
        self.poll_hint_s = float(poll_hint_s)
        self.slow_period_s = max(float(slow_period_s), 0.0)
        self._last_slow: float | None = None
        self.skipped: dict[int, str] = {}  # GPUs NVML lists but cannot open: index -> why
        self._run_pids: Callable[[], Any] | None = None
        self._mig: dict[int, list[str]] = {}  # parent GPU index -> MIG entries selecting it
        self._raw_fields: Any = None
        self._field_struct: Any = None
        nv = _open_nvml()
        self._nv = nv
        try:
            self.driver = self._driver_version()
            chosen, handles = self._choose(indices, visible, use_env)
            self._gpus = [self._open_gpu(i, handles[i]) for i in chosen]
            self._raw_fields, self._field_struct = _raw_field_values(nv)
            for g in self._gpus:
                self._batch(g)
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
                f"NVML started but listing GPUs failed ({_one_line(e) or type(e).__name__}): "
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
                self.skipped[i] = _err_name(e)
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
                uuid = _text(nv.nvmlDeviceGetUUID(handles[i])) if i in handles else ""
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
            g.name = _text(nv.nvmlDeviceGetName(handle))
        except nv.NVMLError:
            pass
        try:
            g.uuid = _text(nv.nvmlDeviceGetUUID(handle))
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
        prefer = (_FI_POWER_INSTANT, _FI_POWER_AVERAGE)
        fields_ok: dict[int, bool] = {}
        try:
            vals = nv.nvmlDeviceGetFieldValues(handle, list(prefer))
            fields_ok = {int(v.fieldId): v.nvmlReturn == 0 for v in vals}
        except nv.NVMLError as e:
            g.mark("power fields", e, ": live-power label taken from the architecture")
        chosen_field = next((f for f in prefer if fields_ok.get(f)), None)
        if chosen_field is not None:
            g.power_mode = _P_FIELD
            g.field_ids = [chosen_field]
            g.power_method = AVERAGE_1S if chosen_field == _FI_POWER_AVERAGE else INSTANT
        else:
            if fields_ok and "power fields" not in g.unsupported:
                g.unsupported["power fields"] = "NotSupported"
                g.notes.append(
                    "power fields: n/a (NVML NotSupported): live-power label taken from "
                    "the architecture"
                )
            try:
                nv.nvmlDeviceGetPowerUsage(handle)
                g.power_mode = _P_USAGE
                g.power_method = _label_by_architecture(g.arch, g.name)
            except nv.NVMLError as e:
                if getattr(e, "value", None) not in _PERMANENT:
                    # A passing error at open: keep asking on every read.
                    g.power_mode = _P_USAGE
                    g.power_method = _label_by_architecture(g.arch, g.name)
                elif g.energy_method == COUNTER:
                    g.power_mode = _P_DERIVED
                    g.power_method = DERIVED
                    g.mark("power", e, ": live power is dE/dt of the energy counter")
                else:
                    g.power_mode = _P_NONE
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

    def _batch(self, g: _Gpu) -> None:
        """Read the counter (``NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION``, the same mJ as
        ``nvmlDeviceGetTotalEnergyConsumption``) and the power field with one call into a
        field array made once, where a first call shows the driver has them."""
        if self._raw_fields is None or g.power_mode == _P_USAGE:
            return  # (power through nvmlDeviceGetPowerUsage: the separate calls)
        ids = []
        if g.energy_method == COUNTER:
            ids.append(_FI_TOTAL_ENERGY)
        if g.power_mode == _P_FIELD:
            ids.extend(g.field_ids)
        if not ids:
            return
        arr = (self._field_struct * len(ids))()
        for i, fid in enumerate(ids):
            arr[i].fieldId = fid
        try:
            rc = self._raw_fields(g.handle, len(ids), arr)
        except Exception:  # noqa: BLE001 - no batch; the binding's calls still work
            return
        if rc != 0 or any(arr[i].nvmlReturn != 0 for i in range(len(ids))):
            return  # a field the driver lacks: the separate calls, as before
        g.batch, g.batch_n = arr, len(ids)
        g.batch_energy = ids.index(_FI_TOTAL_ENERGY) if _FI_TOTAL_ENERGY in ids else -1
        g.batch_power = ids.index(g.field_ids[0]) if g.power_mode == _P_FIELD else -1

    def _read_batch(self, g: _Gpu, t_mono: float) -> tuple[float | None, float | None]:
        """(power W, energy J) from one field call. A failed call or a field that became
        unreadable drops the batch: the separate calls take over from the next tick."""
        arr = g.batch
        rc = self._raw_fields(g.handle, g.batch_n, arr)
        power = energy = None
        if rc != 0:
            g.batch = None
            return None, None
        if g.batch_power >= 0:
            v = arr[g.batch_power]
            if v.nvmlReturn == 0:
                power = getattr(v.value, _VALUE_ATTR.get(v.valueType, "uiVal")) / 1000.0
        if g.batch_energy >= 0:
            v = arr[g.batch_energy]
            if v.nvmlReturn == 0:
                energy = g.acc.update(getattr(v.value, _VALUE_ATTR.get(v.valueType, "ullVal")), t_mono) / 1000.0
            else:
                self._failed(g, "energy counter", self._nv.NVMLError(v.nvmlReturn))
                if "energy counter" in g.unsupported:
                    g.batch = None
            if g.power_mode == _P_DERIVED and energy is not None:
                power = self._derive(g, t_mono, energy)
        elif power is not None:  # no counter: integrate
            energy = g.integ.update(t_mono, power)
        return power, energy

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
        if self._nv is None:
            raise SourceUnavailable("the NVML source was closed")
        slow = self._last_slow is None or t_mono - self._last_slow >= self.slow_period_s
        if slow:
            self._last_slow = t_mono
        run_pids: set[int] | None = None
        if self._run_pids is not None:
            try:
                run_pids = {int(p) for p in self._run_pids()}
            except Exception:  # noqa: BLE001 - the run's tree could not be read this tick
                run_pids = set()
        out = []
        for g in self._gpus:
            if g.batch is not None:
                power, energy = self._read_batch(g, t_mono)
            else:
                power, energy = self._read_calls(g, t_mono)
            if slow:
                self._read_slow(g)
            out.append(
                DeviceReading(
                    key=g.key,
                    energy_j=energy,
                    power_w=power,
                    energy_method=g.energy_method,
                    power_method=g.power_method,
                    util_pct=g.util,
                    mem_used_b=g.mem_used,
                    mem_total_b=g.mem_total,
                    temp_c=g.temp,
                    pids=g.pids,
                )
            )
            if run_pids is not None:
                out.append(self._share_reading(g, t_mono, energy, power, run_pids))
        return out

    def _read_calls(self, g: _Gpu, t_mono: float) -> tuple[float | None, float | None]:
        """(power W, energy J) with one binding call per figure."""
        nv = self._nv
        power: float | None = None
        energy: float | None = None
        mode = g.power_mode
        if mode == _P_FIELD:
            try:
                p = _field_value(nv.nvmlDeviceGetFieldValues(g.handle, g.field_ids)[0])
                power = None if p is None else p / 1000.0
            except nv.NVMLError as e:
                self._failed(g, "power", e)
        elif mode == _P_USAGE:
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
            if mode == _P_DERIVED and energy is not None:
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
                if g.power_mode == _P_FIELD:
                    p = _field_value(nv.nvmlDeviceGetFieldValues(g.handle, g.field_ids)[0])
                    power = None if p is None else p / 1000.0
                elif g.power_mode == _P_USAGE:
                    power = nv.nvmlDeviceGetPowerUsage(g.handle) / 1000.0
            except nv.NVMLError as e:
                self._failed(g, "power", e)
            if power is not None:
                g.integ.update(t_mono, power)

    @staticmethod
    def _share_reading(
        g: _Gpu, t: float, energy: float | None, power: float | None, run_pids: set[int]
    ) -> DeviceReading:
        procs: dict[int, float | None] | None = None
        if g.pids is not None:
            procs = {p: g.proc_sm.get(p) for p in g.pids}
        total = g.share.update(t, energy, power, procs, run_pids)
        frac = g.share.fraction
        mine = None if g.pids is None else tuple(p for p in g.pids if p in run_pids)
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
        if getattr(err, "value", None) in _PERMANENT:
            g.mark(figure, err)
            if figure == "power" and g.power_mode != _P_DERIVED:
                g.power_mode = _P_NONE

    def _slow_call(self, g: _Gpu, figure: str, fn: Any, *args: Any) -> Any:
        if figure in g.unsupported:
            return None
        try:
            return fn(g.handle, *args)
        except self._nv.NVMLError as e:
            self._failed(g, figure, e)
            return None

    def _read_slow(self, g: _Gpu) -> None:
        nv = self._nv
        u = self._slow_call(g, "utilisation", nv.nvmlDeviceGetUtilizationRates)
        g.util = None if u is None else float(u.gpu)
        m = self._slow_call(g, "memory", nv.nvmlDeviceGetMemoryInfo)
        g.mem_used, g.mem_total = (None, None) if m is None else (float(m.used), float(m.total))
        t = self._slow_call(g, "temperature", nv.nvmlDeviceGetTemperature, nv.NVML_TEMPERATURE_GPU)
        g.temp = None if t is None else float(t)
        procs = self._slow_call(g, "processes", nv.nvmlDeviceGetComputeRunningProcesses)
        g.pids = None if procs is None else tuple(int(p.pid) for p in procs)
        if self._run_pids is not None and g.pids:
            self._read_process_utilisation(g)

    def _read_process_utilisation(self, g: _Gpu) -> None:
        """SM utilisation per process since the last call (NVML keeps a short history of
        samples; NotFound means no process ran a kernel since then)."""
        if "process utilisation" in g.unsupported:
            return
        nv = self._nv
        try:
            samples = nv.nvmlDeviceGetProcessUtilization(g.handle, g.util_seen)
        except nv.NVMLError as e:
            if getattr(e, "value", None) == _ERR_NOT_FOUND:
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
        return _gpus_of_pids(self._nv, [(g.index, g.handle) for g in self._gpus], pids)

    def close(self) -> None:
        nv, self._nv = self._nv, None
        if nv is not None:
            _shutdown(nv)


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _gpus_of_pids(nv: Any, handles: list[tuple[int, Any]], pids: set[int]) -> list[int] | None:
    want = {int(p) for p in pids}
    found: list[int] = []
    unknown = False
    for index, handle in handles:
        try:
            procs = nv.nvmlDeviceGetComputeRunningProcesses(handle)
        except nv.NVMLError:
            unknown = True
            continue
        if any(int(p.pid) in want for p in procs):
            found.append(index)
    if not found and unknown:
        return None
    return found


def gpus_of_pids(pids: set[int]) -> list[int] | None:
    """NVML indices of the GPUs whose compute-process list holds any of ``pids``.

    ``None`` when it cannot tell: NVML unavailable, or no match while some GPU's process
    list could not be read. A match on the GPUs that could be read is returned even if
    another GPU could not be read. In a container NVML may list host PIDs, which then
    never match the container's own."""
    try:
        nv = _open_nvml()
    except SourceUnavailable:
        return None
    try:
        handles: list[tuple[int, Any]] = []
        unopened = False
        for i in range(nv.nvmlDeviceGetCount()):
            try:
                handles.append((i, nv.nvmlDeviceGetHandleByIndex(i)))
            except nv.NVMLError:
                unopened = True
        found = _gpus_of_pids(nv, handles, pids)
        return None if unopened and not found else found
    except nv.NVMLError:
        return None
    finally:
        _shutdown(nv)


def _problem(figure: str, why: str) -> dict:
    fix = _FIX_NO_PERMISSION if why == "NoPermission" else _FIX.get(figure, "")
    return {"figure": figure, "why": f"NVML {why}", "fix": fix}


def nvml_probe() -> list[dict]:
    """What can be measured on each GPU, for ``wattui doctor``.

    One dict per GPU (all GPUs, with ``visible`` saying whether ``CUDA_VISIBLE_DEVICES``
    selects it), or a single ``{"available": False, ...}`` entry when NVML is missing.
    Every figure that is n/a comes with why and how to fix it in ``problems``."""
    try:
        src = NvmlSource(use_env=False)
    except SourceUnavailable as e:
        msg = str(e)
        why, _, fix = msg.partition(": ")
        return [
            {
                "available": False,
                "index": None,
                "message": msg,
                "problems": [{"figure": "nvml", "why": why, "fix": fix}],
            }
        ]
    try:
        readings = {r.key: r for r in src.read(time.monotonic())}
        env_value = os.environ.get("CUDA_VISIBLE_DEVICES")
        visible = set(
            select_devices(env_value, [(g.index, g.uuid) for g in src._gpus], src._mig_parent)
        )
        out = []
        for g, info in zip(src._gpus, src.devices(), strict=True):
            r = readings[g.key]
            energy = g.energy_method
            if energy == INTEGRATED and g.power_mode == _P_NONE:
                energy = "n/a"
            power = "n/a" if g.power_mode == _P_NONE else g.power_method
            label_from = {
                _P_FIELD: "field",
                _P_USAGE: "architecture",
                _P_DERIVED: "counter",
                _P_NONE: None,
            }[g.power_mode]
            out.append(
                {
                    "available": True,
                    "index": g.index,
                    "key": g.key,
                    "name": g.name,
                    "uuid": g.uuid,
                    "driver": src.driver,
                    "architecture": _ARCH_NAMES.get(g.arch, "unknown") if g.arch else "unknown",
                    "visible": g.index in visible,
                    "energy": energy,
                    "power": power,
                    "power_label_from": label_from,
                    "utilisation": "n/a" if r.util_pct is None else "ok",
                    "memory": "n/a" if r.mem_total_b is None else "ok",
                    "temperature": "n/a" if r.temp_c is None else "ok",
                    "processes": "n/a" if r.pids is None else "ok",
                    "power_limit_w": g.power_limit_w,
                    "notes": list(info.notes),
                    "problems": [_problem(f, why) for f, why in g.unsupported.items()],
                }
            )
        for i, why in sorted(src.skipped.items()):
            msg = f"GPU {i} cannot be opened (NVML {why})"
            fix = "run wattui as root or where the GPU is accessible"
            out.append(
                {
                    "available": False,
                    "index": i,
                    "message": f"{msg}: {fix}",
                    "visible": i in visible,
                    "problems": [{"figure": "gpu", "why": f"NVML {why}", "fix": fix}],
                }
            )
        out.sort(key=lambda e: e["index"])
        return out
    finally:
        src.close()
