"""Sessions as rows of CodeCarbon's ``emissions.csv``, so its dashboard and the scripts that
read its CSV read wattui sessions too.

The columns and units are CodeCarbon's (``codecarbon.output_methods.emissions_data.
EmissionsData``, 3.x): energy in kWh, power in W (the session's mean), emissions in kg
CO2eq, duration in s, ``timestamp`` local ``%Y-%m-%dT%H:%M:%S`` (the session's end). What
wattui does not know (location, RAM size, utilisation, water) is left empty, never made
up; ``emissions`` is empty without a carbon intensity (``--country`` or
``--carbon-intensity``). Simulated GPUs keep their name, ``SIMULATED GPU``, in
``gpu_model``. ``run_id`` is the wattui session id, ``experiment_id`` its multi-node group.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path

from wattui import __version__
from wattui.model.kinds import DRAM
from wattui.model.session import DeviceRecord, SessionRecord
from wattui.sanitize import clean_text

# CodeCarbon's EmissionsData fields, in its order.
COLUMNS = (
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
)

J_PER_KWH = 3.6e6


class CsvExportError(Exception):
    """One line: why the file cannot be written."""


def _sum_j(devs: list[DeviceRecord]) -> float | None:
    vals = [d.energy_j for d in devs if d.energy_j is not None]
    return sum(vals) if vals else None


def _kwh(j: float | None):
    return "" if j is None else j / J_PER_KWH


def _mean_w(j: float | None, duration: float | None):
    return "" if j is None or not duration else j / duration


def _models(devs: tuple[DeviceRecord, ...] | list[DeviceRecord]) -> str:
    names: dict[str, int] = {}
    for d in devs:
        n = clean_text(d.name) or "unknown"
        names[n] = names.get(n, 0) + 1
    return ", ".join(f"{c} x {n}" for n, c in names.items())


def _num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else ""


def row_for(
    record: SessionRecord | dict, meta: dict, project_name: str | None = None, country: str | None = None
) -> dict:
    """One ``emissions.csv`` row from a session record (``wattui.sessions.session_record``);
    ``country`` (ISO3) is the one the emissions were computed with, if not the recorded one."""
    rec = record if isinstance(record, SessionRecord) else SessionRecord.from_dict(record, strict=False)
    gpus = rec.gpus
    cpus = [d for d in rec.cpu if not d.key.startswith(DRAM)]
    rams = [d for d in rec.cpu if d.key.startswith(DRAM)]
    dur = rec.duration_s
    gpu_j, cpu_j, ram_j = _sum_j(gpus), _sum_j(cpus), _sum_j(rams)
    parts = [x for x in (gpu_j, cpu_j, ram_j) if x is not None]
    total_j = sum(parts) if parts else None
    co2 = rec.co2_g
    kg = co2 / 1000.0 if co2 is not None else None
    end = rec.ended_at or rec.started_at
    settings = meta.get("metric_settings") if isinstance(meta.get("metric_settings"), dict) else {}
    code = country or settings.get("country")
    country, iso = "", ""
    if code and rec.carbon_g_per_kwh is not None:
        from wattui.metrics.carbon import lookup_country

        try:
            c = lookup_country(code)
            country, iso = c.country, c.iso3
        except ValueError:
            pass
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(end)) if end else "",
        "project_name": clean_text(project_name or rec.name or "wattui"),
        "run_id": clean_text(rec.id),
        "experiment_id": clean_text(rec.group or ""),
        "duration": _num(dur),
        "emissions": "" if kg is None else kg,
        "emissions_rate": "" if kg is None or not dur else kg / dur,
        "cpu_power": _mean_w(cpu_j, dur),
        "gpu_power": _mean_w(gpu_j, dur),
        "ram_power": _mean_w(ram_j, dur),
        "cpu_energy": _kwh(cpu_j),
        "gpu_energy": _kwh(gpu_j),
        "ram_energy": _kwh(ram_j),
        "energy_consumed": _kwh(total_j),
        "water_consumed": "",
        "country_name": country,
        "country_iso_code": iso,
        "region": "",
        "cloud_provider": "",
        "cloud_region": "",
        "os": "",
        "python_version": "",
        "codecarbon_version": f"wattui-{__version__}",
        "cpu_count": "",
        "cpu_model": _models(cpus),
        "gpu_count": len(gpus),
        "gpu_model": _models(gpus),
        "longitude": "",
        "latitude": "",
        "ram_total_size": "",
        "tracking_mode": "machine",  # whole GPUs and CPU packages, as CodeCarbon's default
        "cpu_utilization_percent": "",
        "gpu_utilization_percent": "",
        "ram_utilization_percent": "",
        "ram_used_gb": "",
        "on_cloud": "N",
        "pue": _num(rec.pue) or 1.0,
        "wue": 0,
    }


def write_rows(path: Path, rows: list[dict]) -> str:
    """Append ``rows`` to ``path`` as CodeCarbon does: a new file gets the header; an
    existing one must have CodeCarbon's header (columns in any order). Returns
    ``"created"`` or ``"appended"``."""
    path = Path(path)
    header: list[str] | None = None
    if path.exists():
        if not path.is_file():
            raise CsvExportError(f"{path} is not a regular file")
        try:
            with open(path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), None)
        except (OSError, UnicodeDecodeError) as e:
            raise CsvExportError(f"cannot read {path}: {e}") from None
    if header is not None and sorted(header) != sorted(COLUMNS):
        raise CsvExportError(
            f"{path} exists but is not a CodeCarbon emissions.csv (different columns): "
            "give another --output"
        )
    mode = "a" if header is not None else "w"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC), 0o644)
        with os.fdopen(fd, mode, newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=header or list(COLUMNS), lineterminator="\n")
            if header is None:
                w.writeheader()
            w.writerows(rows)
    except OSError as e:
        raise CsvExportError(f"cannot write {path}: {e.strerror or e}") from None
    return "appended" if header is not None else "created"
