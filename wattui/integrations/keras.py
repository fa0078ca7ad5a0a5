"""Keras 3 (any backend): ``model.fit(..., callbacks=[WattuiCallback()])``.

Reports at every epoch end ``epoch`` (epochs completed), ``step`` (batches so far),
``total_epochs`` (``fit(epochs=...)``) and the accuracy from the epoch's logs
(``val_accuracy`` preferred over ``accuracy``, or the name given as ``metric=``), plus the
loss; and the step every ``every_n_steps`` batches (0: never).
"""

from __future__ import annotations

import keras

from . import pick_accuracy, send, to_float

__all__ = ["WattuiCallback"]


class WattuiCallback(keras.callbacks.Callback):
    def __init__(self, metric: str | None = None, every_n_steps: int = 0) -> None:
        super().__init__()
        self.metric = metric
        self.every_n_steps = max(0, int(every_n_steps or 0))
        self.steps = 0

    def _total(self):
        n = (getattr(self, "params", None) or {}).get("epochs")
        return n if isinstance(n, int) and n > 0 else None

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.every_n_steps and self.steps % self.every_n_steps == 0:
            send(step=self.steps, total_epochs=self._total())

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        send(
            epoch=int(epoch) + 1,
            step=self.steps,
            total_epochs=self._total(),
            accuracy=pick_accuracy(logs, self.metric)[1],
            loss=to_float(logs.get("loss")),
            val_loss=to_float(logs.get("val_loss")),
        )
