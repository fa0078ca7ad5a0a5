"""What `wattui doctor` says of each GPU: what can be measured, and how to fix what cannot."""

from __future__ import annotations

import os
import time

from wattui.sources.base import INTEGRATED, SourceUnavailable
from wattui.sources.nvml import NvmlSource
from wattui.sources.nvml_lib import ARCH_NAMES, P_DERIVED, P_FIELD, P_NONE, P_USAGE
from wattui.sources.visible import select_devices

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
            if energy == INTEGRATED and g.power_mode == P_NONE:
                energy = "n/a"
            power = "n/a" if g.power_mode == P_NONE else g.power_method
            label_from = {
                P_FIELD: "field",
                P_USAGE: "architecture",
                P_DERIVED: "counter",
                P_NONE: None,
            }[g.power_mode]
            out.append(
                {
                    "available": True,
                    "index": g.index,
                    "key": g.key,
                    "name": g.name,
                    "uuid": g.uuid,
                    "driver": src.driver,
                    "architecture": ARCH_NAMES.get(g.arch, "unknown") if g.arch else "unknown",
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
