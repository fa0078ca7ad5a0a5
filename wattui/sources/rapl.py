"""CPU package and DRAM energy from RAPL, through Linux powercap (``/sys/class/powercap``).

Zones used (each counted once):

* ``intel-rapl:N`` named ``package-N``: the CPU package -> device ``cpu-package-N``;
* a sub-zone ``intel-rapl:N:M`` named ``dram`` -> device ``dram-N`` (a top-level zone
  named ``dram`` -> ``dram-K`` in the order found).

Not added: ``core`` and ``uncore`` sub-zones (already inside the package), ``psys`` (the
whole platform, which contains the packages), and ``intel-rapl-mmio`` (a second view of
the same package counter). AMD CPUs expose RAPL through the same ``intel-rapl`` zones
on Linux >= 5.8, so they work unchanged.

``energy_uj`` counts up and wraps at ``max_energy_range_uj``; :class:`EnergyAccumulator`
adds the range back on a wrap, when the step over the top fits the package's plausible
power times the time since the last read; a small step back is jitter, not a wrap. The range is typically 262 kJ (about 17 minutes at
250 W), so any polling period of seconds sees at most one wrap between reads. Live power
is dE/dt between consecutive reads (``DERIVED``).

On kernels since 2020 (CVE-2020-8694) ``energy_uj`` is readable by root only; this
source then raises :class:`SourceUnavailable` with how to grant access rather than
reporting zero.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from wattui.sources.base import (
    COUNTER,
    DERIVED,
    DeviceInfo,
    DeviceReading,
    EnergyAccumulator,
    PowerSource,
    SourceUnavailable,
    plausible_max_w,
)

__all__ = ["RaplSource", "rapl_probe", "DEFAULT_ROOT"]

DEFAULT_ROOT = "/sys/class/powercap"

_TOP = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


def _grant_hint(root: str) -> str:
    return (
        f"grant read access with `sudo chmod o+r {root}/intel-rapl:*/energy_uj "
        f"{root}/intel-rapl:*:*/energy_uj` (until reboot; docs/measurement.md has a "
        "permanent tmpfiles rule) or run wattui as root"
    )


def _missing_hint(root: str) -> str:
    return (
        f"no RAPL energy counters under {root} (not an x86 CPU with the intel_rapl driver, "
        "or a VM/container that hides them): try `sudo modprobe intel_rapl_msr`, or on a "
        "container mount the host's /sys/class/powercap"
    )


@dataclass(frozen=True)
class _Zone:
    path: Path  # the zone directory
    zone: str  # "intel-rapl:0", "intel-rapl:0:2"
    name: str  # the zone's own name: "package-0", "dram", "psys", "core", ...
    key: str  # "cpu-package-0", "dram-0"; "" when not counted
    kind: str  # "cpu" | "dram" | ""
    index: int
    why_skipped: str = ""


def _read_text(path: Path) -> str:
    with open(path) as f:
        return f.read().strip()


def _scan(root: Path) -> list[_Zone]:
    """Every RAPL zone under ``root``, with what it would count as (or why not)."""
    try:
        entries = sorted(os.listdir(root))
    except OSError:  # missing, or a directory we may not list (then nothing is usable)
        return []
    tops: dict[int, str] = {}
    subs: list[tuple[int, int, str]] = []
    for entry in entries:
        m = _TOP.match(entry)
        if m:
            tops[int(m.group(1))] = entry
            continue
        m = _SUB.match(entry)
        if m:
            subs.append((int(m.group(1)), int(m.group(2)), entry))
    # Sub-zones may only be listed inside their parent (older kernels, some fakes).
    for n, entry in tops.items():
        try:
            children = sorted(os.listdir(root / entry))
        except OSError:
            children = []
        for child in children:
            m = _SUB.match(child)
            if m and int(m.group(1)) == n and not any(s[2] == child for s in subs):
                subs.append((n, int(m.group(2)), f"{entry}/{child}"))

    zones: list[_Zone] = []
    package_of: dict[int, int] = {}
    top_dram = 0
    for n in sorted(tops):
        entry = tops[n]
        path = root / entry
        try:
            name = _read_text(path / "name")
        except OSError:
            name = ""
        if name.startswith("package-"):
            try:
                pkg = int(name.split("-", 1)[1])
            except ValueError:
                pkg = n
            package_of[n] = pkg
            zones.append(_Zone(path, entry, name, f"cpu-package-{pkg}", "cpu", pkg))
        elif name == "dram":
            zones.append(_Zone(path, entry, name, f"dram-{top_dram}", "dram", top_dram))
            top_dram += 1
        elif name == "psys":
            zones.append(
                _Zone(path, entry, name, "", "", n, "platform total; contains the packages")
            )
        else:
            zones.append(_Zone(path, entry, name, "", "", n, "unknown zone"))
    for n, m, rel in sorted(subs):
        path = root / rel
        zone = rel.rsplit("/", 1)[-1]
        try:
            name = _read_text(path / "name")
        except OSError:
            name = ""
        if name == "dram":
            pkg = package_of.get(n, n)
            zones.append(_Zone(path, zone, name, f"dram-{pkg}", "dram", pkg))
        else:
            zones.append(
                _Zone(path, zone, name, "", "", m, "inside the package (would double count)")
            )
    return zones


def _check_readable(zones: list[_Zone], root: str) -> None:
    """Raise SourceUnavailable unless every counted zone's energy_uj can be read."""
    counted = [z for z in zones if z.key]
    if not counted:
        raise SourceUnavailable(_missing_hint(root))
    for z in counted:
        try:
            int(_read_text(z.path / "energy_uj"))
        except PermissionError:
            raise SourceUnavailable(
                f"RAPL energy counters are root-only here (permission denied reading "
                f"{z.path / 'energy_uj'}): {_grant_hint(root)}"
            ) from None
        except (OSError, ValueError) as e:
            raise SourceUnavailable(
                f"cannot read {z.path / 'energy_uj'} ({e.__class__.__name__}): "
                f"{_missing_hint(root)}"
            ) from None


class RaplSource(PowerSource):
    """CPU packages and DRAM through RAPL. Raises :class:`SourceUnavailable` (one line,
    with how to fix) when the counters are missing or not readable."""

    name = "rapl"
    needs_fast_poll = False
    # Counters: the energy is exact read once a second, and power derived over a second is
    # steadier than over a tick; so RAPL is read on full ticks only, and light ticks (which
    # the native ticker can then take alone) do not wait for it.
    reads_on_light_ticks = False

    def __init__(self, root: str = DEFAULT_ROOT):
        self.root = str(root)
        zones = _scan(Path(self.root))
        _check_readable(zones, self.root)
        self._zones = [z for z in zones if z.key]
        self._energy_files = [str(z.path / "energy_uj") for z in self._zones]
        self._acc: list[EnergyAccumulator] = []
        self._limits: list[float | None] = []
        for z in self._zones:
            try:
                wrap = float(_read_text(z.path / "max_energy_range_uj"))
            except (OSError, ValueError):
                wrap = None
            try:
                limit = float(_read_text(z.path / "constraint_0_power_limit_uw")) / 1e6
            except (OSError, ValueError):
                limit = None
            self._limits.append(limit)
            # uJ per second the counter can plausibly run: tells a wrap or reset from jitter
            max_rate = plausible_max_w(z.kind, limit if z.kind == "cpu" else None) * 1e6
            self._acc.append(
                EnergyAccumulator(wrap_at=wrap if wrap and wrap > 0 else None, max_rate=max_rate)
            )
        self._last: list[tuple[float, float] | None] = [None] * len(self._zones)
        self._cpu_model = _cpu_model()

    def devices(self) -> list[DeviceInfo]:
        out = []
        for z, acc, limit in zip(self._zones, self._acc, self._limits, strict=True):
            notes = [] if acc.wrap_at else ["max_energy_range_uj unreadable: wraps undetected"]
            if acc.jitters:
                notes.append(f"energy_uj read back {acc.jitters}x: taken as jitter, no energy added")
            if acc.spikes:
                notes.append(f"energy_uj jumped ahead implausibly {acc.spikes}x: ignored")
            if acc.resets:
                notes.append(f"energy_uj restarted {acc.resets}x: energy before each restart is missing")
            name = f"{self._cpu_model} ({z.name})" if z.kind == "cpu" else f"DRAM ({z.zone})"
            out.append(
                DeviceInfo(
                    key=z.key,
                    kind=z.kind,
                    index=z.index,
                    name=name,
                    uuid=z.zone,
                    driver="powercap",
                    power_limit_w=limit if z.kind == "cpu" else None,
                    energy_method=COUNTER,
                    power_method=DERIVED,
                    notes=tuple(notes),
                )
            )
        return out

    def read(self, t_mono: float) -> list[DeviceReading]:
        out = []
        for i, z in enumerate(self._zones):
            energy: float | None
            power: float | None = None
            try:
                with open(self._energy_files[i], "rb") as f:
                    raw = int(f.read())
            except (OSError, ValueError):
                energy = None
            else:
                energy = self._acc[i].update(raw, t_mono) / 1e6
                last = self._last[i]
                if last is not None and t_mono > last[0]:
                    power = (energy - last[1]) / (t_mono - last[0])
                self._last[i] = (t_mono, energy)
            out.append(
                DeviceReading(
                    key=z.key,
                    energy_j=energy,
                    power_w=power,
                    energy_method=COUNTER,
                    power_method=DERIVED,
                )
            )
        return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def rapl_probe(root: str = DEFAULT_ROOT) -> list[dict]:
    """Every RAPL zone under ``root``: whether it is counted, readable, and if not, why and
    how to fix. A single ``{"available": False, ...}`` entry when there is no RAPL."""
    zones = _scan(Path(root))
    if not zones:
        return [{"available": False, "zone": None, "why": _missing_hint(root), "fix": ""}]
    out = []
    for z in zones:
        entry = {
            "available": True,
            "zone": z.zone,
            "name": z.name,
            "key": z.key or None,
            "counted": bool(z.key),
            "energy": "counter" if z.key else "not counted",
            "power": "derived" if z.key else None,
            "readable": None,
            "why": z.why_skipped,
            "fix": "",
        }
        if z.key:
            try:
                int(_read_text(z.path / "energy_uj"))
                entry["readable"] = True
            except PermissionError:
                entry.update(
                    readable=False,
                    energy="n/a",
                    why="energy_uj is root-only (permission denied)",
                    fix=_grant_hint(root),
                )
            except (OSError, ValueError) as e:
                entry.update(readable=False, energy="n/a", why=f"cannot read energy_uj ({e})")
        out.append(entry)
    return out
