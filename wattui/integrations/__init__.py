"""Optional training-framework callbacks that report epochs, steps and validation accuracy
to a watching wattui with no other code in the training script:

- PyTorch Lightning: ``from wattui.integrations.lightning import WattuiCallback``
- Hugging Face Transformers: ``from wattui.integrations.transformers import WattuiCallback``
- Keras 3: ``from wattui.integrations.keras import WattuiCallback``

Each calls :func:`wattui.report` (the accuracy under the metric's own name, ``epoch``,
``step``, ``total_epochs``), which never blocks and never raises; outside a wattui recording
the events are only buffered. In a multi-node run only global rank 0 reports (as the
cluster docs say); ``per_node=True`` makes the first process of every node report, for a
recorder per node.
Importing this package imports no framework; each module imports only its own.
"""

from __future__ import annotations

import math

from wattui.metrics.intake import choose_accuracy, is_accuracy_key

__all__ = ["pick_accuracy", "accuracy_values", "reports", "env_rank", "to_float", "send"]

def to_float(v) -> float | None:
    """A finite float from a number, numpy scalar or one-element tensor; None otherwise."""
    if v is None or isinstance(v, bool):
        return None
    try:
        if hasattr(v, "detach"):  # torch tensor
            v = v.detach()
        if hasattr(v, "numel") and v.numel() != 1:
            return None
        if hasattr(v, "item"):
            v = v.item()
        f = float(v)
    except Exception:  # noqa: BLE001 - anything odd is simply not an accuracy
        return None
    return f if math.isfinite(f) else None


def pick_accuracy(metrics, key: str | None = None) -> tuple[str | None, float | None]:
    """``(name, value)`` of the accuracy in ``metrics`` (validation preferred), or
    ``(None, None)``. With ``key`` only that name counts."""
    if not metrics:
        return None, None
    try:
        items = dict(metrics)
    except Exception:  # noqa: BLE001
        return None, None
    if key is not None:
        v = to_float(items.get(key))
        return (key, v) if v is not None else (None, None)
    numbers = {k: f for k, f in ((str(k), to_float(v)) for k, v in items.items()) if f is not None}
    name = choose_accuracy(numbers)
    if name is None:
        return None, None
    return name, numbers[name]


def accuracy_values(name: str | None, value: float | None) -> dict:
    """The accuracy under the metric's own name (``val_acc`` stays ``val_acc``), plus
    ``accuracy`` only when the intake would not take that name for an accuracy."""
    if name is None or value is None:
        return {}
    return {name: value} if is_accuracy_key(name) else {name: value, "accuracy": value}


def env_rank(*names: str) -> int | None:
    """The first of the environment variables ``names`` that holds an integer."""
    import os

    for n in names:
        try:
            return int(os.environ[n])
        except (KeyError, ValueError):
            continue
    return None


def reports(global_rank, local_rank, per_node: bool = False) -> bool:
    """Whether this process reports: global rank 0 only, or with ``per_node`` the first
    process of each node. An unknown rank counts as 0 (a single-process run)."""
    rank = local_rank if per_node else global_rank
    return not isinstance(rank, int) or rank == 0


def send(**values) -> None:
    """``wattui.report`` with the None values left out."""
    import wattui

    clean = {k: v for k, v in values.items() if v is not None}
    if clean:
        wattui.report(**clean)
