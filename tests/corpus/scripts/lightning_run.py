"""Lightning 2.x: self.log(prog_bar=True) of val_acc and train_acc, sanity check on.

--bar default: no progress-bar callback given (Lightning picks Rich's when rich is installed);
--bar rich / tqdm: that bar explicitly.
"""

import argparse

import lightning as L
import torch
from _data import blobs
from _truth import write_truth
from lightning.pytorch.callbacks import Callback, RichProgressBar, TQDMProgressBar
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

EPOCHS = 4


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        out = self(x)
        loss = nn.functional.cross_entropy(out, y)
        acc = (out.argmax(1) == y).float().mean()
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", acc, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y), prog_bar=True)
        self.log("val_acc", (out.argmax(1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


class Truth(Callback):
    """val_acc from trainer.callback_metrics after each real (not sanity-check) validation."""

    def __init__(self):
        self.history = []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.history.append(float(trainer.callback_metrics["val_acc"]))


p = argparse.ArgumentParser()
p.add_argument("--bar", choices=("default", "rich", "tqdm"), default="default")
bar = p.parse_args().bar
L.seed_everything(0)
x, y = blobs(1200, seed=1)
xv, yv = blobs(300, seed=2)
train = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
val = DataLoader(TensorDataset(xv, yv), batch_size=100)
truth = Truth()
callbacks = [truth]
if bar == "rich":
    callbacks.append(RichProgressBar())
elif bar == "tqdm":
    callbacks.append(TQDMProgressBar())
trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, callbacks=callbacks,
                    default_root_dir=".", log_every_n_steps=10)
trainer.fit(Net(), train, val)
write_truth(
    history=truth.history,
    total_epochs=trainer.max_epochs,
    epochs_done=trainer.current_epoch,
    epoch_base=0,
    accuracy_key="val_acc",
    accuracy_scale="fraction",
    accuracy_stream="stdout",  # both bars write to stdout; Lightning's notices go to stderr
    source="trainer.callback_metrics['val_acc'] at each on_validation_end outside the sanity check",
    notes="train_acc_step/train_acc_epoch are training accuracies; the sanity check's val_acc is not an epoch",
    progress_bar=type(trainer.progress_bar_callback).__name__,
)
