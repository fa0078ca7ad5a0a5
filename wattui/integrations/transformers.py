"""Hugging Face Transformers: ``Trainer(..., callbacks=[WattuiCallback()])``.

Reports the evaluation accuracy (``eval_accuracy`` from ``compute_metrics``, or the name
given as ``metric=``) after every evaluation, ``epoch``/``step``/``total_epochs`` at every
epoch end, and the step on every log (``logging_steps``). The accuracy keeps its own name
(``eval_accuracy``). Only the main process (``is_world_process_zero``) reports;
``per_node=True``: the first process of each node (``is_local_process_zero``).
"""

from __future__ import annotations

import math

from transformers import TrainerCallback

from wattui.integrations import accuracy_values, pick_accuracy, send, to_float

__all__ = ["WattuiCallback"]


def _total(args, state):
    n = to_float(getattr(state, "num_train_epochs", None)) or to_float(
        getattr(args, "num_train_epochs", None)
    )
    if n is None or n <= 0:
        return None
    return int(math.ceil(n))


def _epoch(state):
    e = to_float(getattr(state, "epoch", None))
    if e is None:
        return None
    r = round(e)
    return int(r) if abs(e - r) < 1e-6 else e


class WattuiCallback(TrainerCallback):
    def __init__(self, metric: str | None = None, per_node: bool = False) -> None:
        self.metric = metric
        self.per_node = bool(per_node)

    def _reports(self, state) -> bool:
        attr = "is_local_process_zero" if self.per_node else "is_world_process_zero"
        return bool(getattr(state, attr, True))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self._reports(state):
            return
        acc = accuracy_values(*pick_accuracy(metrics, self.metric))
        if acc:
            acc.update(
                epoch=_epoch(state) or None,  # an evaluation before training is no epoch's
                step=getattr(state, "global_step", None),
                total_epochs=_total(args, state),
            )
            send(**acc)

    def on_epoch_end(self, args, state, control, **kwargs):
        if not self._reports(state):
            return
        send(
            epoch=_epoch(state),
            step=getattr(state, "global_step", None),
            total_epochs=_total(args, state),
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self._reports(state):
            return
        values = {"step": getattr(state, "global_step", None)}
        loss = to_float((logs or {}).get("loss"))
        if loss is not None:
            values["loss"] = loss
        acc = accuracy_values(*pick_accuracy(logs, self.metric))
        if acc:  # the same evaluation as on_evaluate's: same epoch, stored once
            values.update(acc)
            values["epoch"] = _epoch(state) or None
        send(**values)
