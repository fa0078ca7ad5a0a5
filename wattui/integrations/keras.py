"""Keras 3 (any backend): ``model.fit(..., callbacks=[WattuiCallback()])``.

Reports at every epoch end ``epoch`` (epochs completed), ``step`` (batches so far),
``total_epochs`` (``fit(epochs=...)``) and the accuracy from the epoch's logs
(``val_accuracy`` preferred over ``accuracy``, or the name given as ``metric=``), plus the
loss; and the step every ``every_n_steps`` batches (0: never). The accuracy keeps its own
name; the step counts from 0 again at every ``fit()``. In a multi-process run only global
rank 0 reports (``RANK``, ``SLURM_PROCID`` or ``OMPI_COMM_WORLD_RANK``); ``per_node=True``:
local rank 0 of every node.
"""

from __future__ import annotations

import keras

from wattui.integrations import accuracy_values, env_rank, pick_accuracy, reports, send, to_float

__all__ = ["WattuiCallback"]


class WattuiCallback(keras.callbacks.Callback):
    def __init__(self, metric: str | None = None, every_n_steps: int = 0, per_node: bool = False) -> None:
        super().__init__()
        self.metric = metric
        self.every_n_steps = max(0, int(every_n_steps or 0))
        self.steps = 0
        self.on = reports(
            env_rank("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"),
            env_rank("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"),
            per_node,
        )

    def on_train_begin(self, logs=None):
        self.steps = 0  # each fit() counts its own steps

    def _total(self):
        n = (getattr(self, "params", None) or {}).get("epochs")
        return n if isinstance(n, int) and n > 0 else None

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.on and self.every_n_steps and self.steps % self.every_n_steps == 0:
            send(step=self.steps, total_epochs=self._total())

    def on_epoch_end(self, epoch, logs=None):
        if not self.on:
            return
        logs = logs or {}
        values = accuracy_values(*pick_accuracy(logs, self.metric))
        values.update(
            epoch=int(epoch) + 1,
            step=self.steps,
            total_epochs=self._total(),
            loss=to_float(logs.get("loss")),
            val_loss=to_float(logs.get("val_loss")),
        )
        send(**values)
