"""Names of the devices on this machine, used to name and find calibrated predictor sets."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return "CPU " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU " + (platform.processor() or platform.machine() or "unknown")


def cuda_name(index: int = 0) -> str | None:
    """Name of CUDA device ``index`` if torch is importable and sees it, else None."""
    try:
        import torch

        if torch.cuda.is_available() and index < torch.cuda.device_count():
            return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    except Exception:  # noqa: BLE001 - any failure means: no usable CUDA device
        return None
    return None


def device_name(device: str) -> str:
    """Descriptive name for ``cpu`` or ``cuda:N``."""
    if device.startswith("cuda"):
        idx = int(device.split(":", 1)[1]) if ":" in device else 0
        return cuda_name(idx) or f"cuda:{idx}"
    return cpu_name()


def current_devices() -> list[str]:
    """Candidate devices, most specific first: the first CUDA GPU (if any), then the CPU."""
    gpu = cuda_name(0)
    return [gpu, cpu_name()] if gpu else [cpu_name()]
