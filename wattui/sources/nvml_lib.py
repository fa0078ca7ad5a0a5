"""The pynvml binding as wattui uses it: imported only when a source opens, NVML's numbers
(repeated here so that importing never needs pynvml), opening and closing NVML, field values,
power labels by architecture, and which GPUs a set of processes uses."""

from __future__ import annotations

from typing import Any

from wattui.sources.base import AVERAGE_1S, INSTANT, SourceUnavailable

# NVML numbers, repeated here so that importing this module never needs pynvml.
ERR_NOT_SUPPORTED = 3
ERR_NO_PERMISSION = 4
ERR_NOT_FOUND = 6
ERR_FUNCTION_NOT_FOUND = 13
PERMANENT = (ERR_NOT_SUPPORTED, ERR_NO_PERMISSION, ERR_FUNCTION_NOT_FOUND)
FI_TOTAL_ENERGY = 83
FI_POWER_AVERAGE = 185
FI_POWER_INSTANT = 186
ARCH_AMPERE = 7
ARCH_UNKNOWN = 0xFFFFFFFF
ARCH_NAMES = {
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
# NVML value types: the member of the value union pynvml declares, and its native struct
# format (c_double, c_uint, c_ulong, c_ulonglong, c_longlong, c_int, c_ushort)
_VALUE_TYPES = {0: ("dVal", "d"), 1: ("uiVal", "I"), 2: ("ulVal", "L"), 3: ("ullVal", "Q"),
                4: ("sllVal", "q"), 5: ("siVal", "i"), 6: ("usVal", "H")}
VALUE_ATTR = {k: attr for k, (attr, _fmt) in _VALUE_TYPES.items()}
VALUE_FORMAT = {k: fmt for k, (_attr, fmt) in _VALUE_TYPES.items()}
TYPE_UINT, TYPE_ULONGLONG = 1, 3

# power read modes
P_NONE, P_FIELD, P_USAGE, P_DERIVED = 0, 1, 2, 3


def import_pynvml() -> Any:
    try:
        import pynvml  # noqa: PLC0415 - imported lazily on purpose
    except ImportError as e:  # pragma: no cover - the dependency is declared
        raise SourceUnavailable(
            "the NVML binding is not installed (no module 'pynvml'): pip install nvidia-ml-py"
        ) from e
    return pynvml


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def init_failure(nv: Any, err: BaseException) -> tuple[str, str]:
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
        f"NVML could not start ({one_line(err) or type(err).__name__})",
        "check that `nvidia-smi` works",
    )


def open_nvml() -> Any:
    """Import pynvml and initialise NVML, or raise SourceUnavailable (one line)."""
    nv = import_pynvml()
    try:
        nv.nvmlInit()
    except Exception as e:  # NVMLError, or anything odd from loading the library
        why, fix = init_failure(nv, e)
        raise SourceUnavailable(f"{why}: {fix}") from None
    return nv


def shutdown(nv: Any) -> None:
    try:
        nv.nvmlShutdown()
    except Exception:  # noqa: BLE001 - closing must not fail
        pass


def err_name(err: BaseException) -> str:
    name = type(err).__name__
    return name[len("NVMLError_") :] if name.startswith("NVMLError_") else name


def field_value(v: Any) -> float | None:
    if v.nvmlReturn != 0:
        return None
    return float(getattr(v.value, VALUE_ATTR.get(v.valueType, "uiVal")))


def raw_field_values(nv: Any) -> tuple[Any, Any]:
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


PROCS_ROOM = 64  # processes per GPU the raw call has room for


class RawSlowCalls:
    """``nvmlDeviceGetUtilizationRates``, ``nvmlDeviceGetMemoryInfo`` (v1) and
    ``nvmlDeviceGetTemperature`` as plain C calls into structs made once, for the
    once-a-second reads: the binding's wrappers (a lock and a lookup per call, a new struct
    each time) cost twice the calls themselves. Each call returns NVML's return code; the
    figures are then in :attr:`util`, :attr:`mem` and :attr:`temp`."""

    def __init__(self, nv: Any):
        import ctypes

        get = nv._nvmlGetFunctionPointer
        self.util_fn = get("nvmlDeviceGetUtilizationRates")
        self.mem_fn = get("nvmlDeviceGetMemoryInfo")
        self.temp_fn = get("nvmlDeviceGetTemperature")
        self.util = type("_Util", (ctypes.Structure,), {"_fields_": nv.c_nvmlUtilization_t._fields_})()
        self.mem = type("_Mem", (ctypes.Structure,), {"_fields_": nv.c_nvmlMemory_t._fields_})()
        self.temp = ctypes.c_uint()
        self.util_ref = ctypes.byref(self.util)
        self.mem_ref = ctypes.byref(self.mem)
        self.temp_ref = ctypes.byref(self.temp)
        self.gpu_sensor = int(nv.NVML_TEMPERATURE_GPU)
        # the processes (v3, as the binding calls it) into room for PROCS_ROOM of them;
        # more, or no v3: the binding's call, which sizes its array first
        try:
            self.procs_fn = get("nvmlDeviceGetComputeRunningProcesses_v3")
            self.procs = (nv.c_nvmlProcessInfo_v3_t * PROCS_ROOM)()
        except Exception:  # noqa: BLE001
            self.procs_fn = None
            return
        self.procs_n = ctypes.c_uint(PROCS_ROOM)
        self.procs_n_ref = ctypes.byref(self.procs_n)
        self.insufficient = int(nv.NVML_ERROR_INSUFFICIENT_SIZE)


def raw_slow_calls(nv: Any) -> RawSlowCalls | None:
    """:class:`RawSlowCalls`, or None where this pynvml or library lacks any of them (the
    binding's own calls are used then, each failing on its own)."""
    try:
        return RawSlowCalls(nv)
    except Exception:  # noqa: BLE001 - an older or newer binding, a missing symbol
        return None


class FieldLayout:
    """Where a field struct's return code, value type and value lie, to decode a copy of a
    field array's bytes (``struct``, no ctypes object per figure)."""

    def __init__(self, struct_type: Any):
        import ctypes
        import struct

        self.size = ctypes.sizeof(struct_type)
        self.ret = struct_type.nvmlReturn.offset
        self.type = struct_type.valueType.offset
        self.value = struct_type.value.offset
        self.uint = struct.Struct("I")
        # the union's members, by NVML value type, as the native C types pynvml declares
        self.values = {k: struct.Struct(f) for k, f in VALUE_FORMAT.items()}

    def struct_for(self, types: list[int]) -> Any:
        """One ``struct`` for an array of ``len(types)`` fields: (value type, nvmlReturn,
        value) of each, the value read as ``types[i]`` (check the value type it returns)."""
        import struct

        parts, at = ["@"], 0  # native sizes, as ctypes lays the fields out
        for i, t in enumerate(types):
            for off, fmt in sorted(((self.type, "I"), (self.ret, "I"), (self.value, VALUE_FORMAT[t]))):
                off += i * self.size
                parts.append(f"{off - at}x{fmt}" if off > at else fmt)
                at = off + struct.calcsize("@" + fmt)
        return struct.Struct("".join(parts))

    def read(self, buf: Any, base: int, slot: int, default_type: int) -> tuple[int, Any]:
        """(nvmlReturn, value) of field ``slot`` of the array at byte ``base`` of ``buf``."""
        at = base + slot * self.size
        unpack = self.uint.unpack_from
        ret = unpack(buf, at + self.ret)[0]
        if ret != 0:
            return ret, None
        fmt = self.values.get(unpack(buf, at + self.type)[0]) or self.values[default_type]
        return 0, fmt.unpack_from(buf, at + self.value)[0]


def label_by_architecture(arch: int | None, name: str) -> str:
    """What nvmlDeviceGetPowerUsage returns: a 1 s average on Ampere (except A100), Ada,
    Hopper and newer; instantaneous on older parts."""
    if arch is None or arch == ARCH_UNKNOWN or arch < ARCH_AMPERE:
        return INSTANT
    if arch == ARCH_AMPERE and "A100" in name.upper():
        return INSTANT
    return AVERAGE_1S


def text_of(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def gpus_of_pids_in(nv: Any, handles: list[tuple[int, Any]], pids: set[int]) -> list[int] | None:
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
        nv = open_nvml()
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
        found = gpus_of_pids_in(nv, handles, pids)
        return None if unopened and not found else found
    except nv.NVMLError:
        return None
    finally:
        shutdown(nv)


