"""Write a capture's truth (taken from the framework's own state) where the capture harness asks.

Every corpus script ends with ``write_truth(...)``; the harness passes the path in
``CORPUS_TRUTH``. Accuracies are fractions (0..1) whatever the script prints; ``history`` is
the epoch-level validation/eval/test accuracy of each epoch, in order.
"""

from __future__ import annotations

import json
import os


def write_truth(
    *,
    history: list[float],
    total_epochs: int,
    epoch_base: int | None,
    accuracy_key: str,
    accuracy_scale: str,
    accuracy_stream: str,
    source: str,
    epochs_done: int | None = None,
    best_accuracy: float | None = None,
    notes: str = "",
    **extra,
) -> None:
    history = [float(a) for a in history]
    truth = {
        "final_accuracy": history[-1] if history else None,
        "best_accuracy": float(best_accuracy) if best_accuracy is not None else max(history),
        "epochs_done": len(history) if epochs_done is None else int(epochs_done),
        "total_epochs": int(total_epochs),
        "epoch_base": epoch_base,
        "accuracy_key": accuracy_key,
        "accuracy_scale": accuracy_scale,
        "accuracy_stream": accuracy_stream,
        "history": history,
        "source": source,
        "notes": notes,
    }
    truth.update(extra)
    path = os.environ.get("CORPUS_TRUTH")
    if not path:
        return
    with open(path, "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1)
