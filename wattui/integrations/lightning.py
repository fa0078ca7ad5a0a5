"""PyTorch Lightning: ``Trainer(callbacks=[WattuiCallback()])``.

Reports ``epoch`` (epochs completed), ``step`` (optimizer steps), ``total_epochs``
(``max_epochs``) at the end of every training epoch, the validation accuracy after every
validation run (``val_acc``, ``val_accuracy``... found in ``trainer.callback_metrics``, or the
name given as ``monitor=``), and the step every ``every_n_steps`` batches (0: never).
Only global rank 0 reports (``per_node=True``: the first process of each node); sanity
checks are ignored. The accuracy keeps its own name (``val_acc``).

Works with the ``lightning`` package (``lightning.pytorch``) and with the older
``pytorch_lightning`` one: ``WattuiCallback`` derives from whichever is installed
(``lightning`` first); ``PytorchLightningCallback`` always derives from ``pytorch_lightning``,
for code that uses ``pytorch_lightning.Trainer`` while both are installed.
"""

from __future__ import annotations

from wattui.integrations import accuracy_values, pick_accuracy, reports, send

__all__ = ["WattuiCallback", "PytorchLightningCallback", "make_callback_class"]


class _Hooks:
    def __init__(self, monitor: str | None = None, every_n_steps: int = 0, per_node: bool = False) -> None:
        super().__init__()
        self.monitor = monitor
        self.every_n_steps = max(0, int(every_n_steps or 0))
        self.per_node = bool(per_node)

    def _reports(self, trainer) -> bool:
        rank_ok = reports(getattr(trainer, "global_rank", 0), getattr(trainer, "local_rank", 0), self.per_node)
        return rank_ok and not getattr(trainer, "sanity_checking", False)

    @staticmethod
    def _total(trainer):
        n = getattr(trainer, "max_epochs", None)
        return n if isinstance(n, int) and n > 0 else None

    def _accuracy(self, trainer) -> dict:
        return accuracy_values(*pick_accuracy(getattr(trainer, "callback_metrics", None), self.monitor))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and self._reports(trainer):
            step = getattr(trainer, "global_step", 0)
            if step and step % self.every_n_steps == 0:
                send(step=step, total_epochs=self._total(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._reports(trainer):
            return
        acc = self._accuracy(trainer)
        if acc:
            # validation runs inside training epoch current_epoch (0-based): report it as
            # that epoch's (1-based, like on_train_epoch_end), so both events agree
            acc.update(
                epoch=getattr(trainer, "current_epoch", 0) + 1,
                step=getattr(trainer, "global_step", None),
                total_epochs=self._total(trainer),
            )
            send(**acc)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._reports(trainer):
            return
        values = self._accuracy(trainer)
        values.update(
            epoch=getattr(trainer, "current_epoch", 0) + 1,
            step=getattr(trainer, "global_step", None),
            total_epochs=self._total(trainer),
        )
        send(**values)


def make_callback_class(base: type) -> type:
    """A wattui callback class deriving from ``base`` (a Lightning ``Callback`` class)."""
    return type("WattuiCallback", (_Hooks, base), {"__module__": __name__, "__doc__": __doc__})


try:
    from lightning.pytorch import Callback as _LightningCallback
except ImportError:
    _LightningCallback = None
try:
    from pytorch_lightning import Callback as _PLCallback
except ImportError:
    _PLCallback = None

if _LightningCallback is None and _PLCallback is None:
    raise ImportError(
        "wattui.integrations.lightning needs PyTorch Lightning: pip install lightning",
        name="lightning",
    )

WattuiCallback = make_callback_class(_LightningCallback or _PLCallback)
PytorchLightningCallback = (
    make_callback_class(_PLCallback) if _PLCallback is not None else None
)
