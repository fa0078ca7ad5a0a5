"""Lightning 2.x as its docs show it: the default bar, ModelCheckpoint and EarlyStopping
(verbose) on val_acc, then trainer.test(), which prints a table with test_acc after training."""

import lightning as L
import torch
from _data import blobs
from _truth import write_truth
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

EPOCHS = 12


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return self.net(x)

    def _acc(self, batch):
        x, y = batch
        out = self(x)
        return nn.functional.cross_entropy(out, y), (out.argmax(1) == y).float().mean()

    def training_step(self, batch, _):
        loss, acc = self._acc(batch)
        self.log("train_acc", acc, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        loss, acc = self._acc(batch)
        self.log("val_loss", loss)
        self.log("val_acc", acc, prog_bar=True)

    def test_step(self, batch, _):
        loss, acc = self._acc(batch)
        self.log("test_loss", loss)
        self.log("test_acc", acc)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


class Truth(Callback):
    def __init__(self):
        self.history = []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.history.append(float(trainer.callback_metrics["val_acc"]))


L.seed_everything(0)
x, y = blobs(800, seed=1)
xv, yv = blobs(150, seed=2)
xt, yt = blobs(400, seed=3)
train = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
val = DataLoader(TensorDataset(xv, yv), batch_size=150)
test = DataLoader(TensorDataset(xt, yt), batch_size=200)
truth = Truth()
stop = EarlyStopping(monitor="val_acc", mode="max", patience=3, verbose=True)
ckpt = ModelCheckpoint(monitor="val_acc", mode="max", verbose=True)
trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, callbacks=[truth, stop, ckpt],
                    default_root_dir=".")
model = Net()
trainer.fit(model, train, val)
(result,) = trainer.test(model, test, ckpt_path="best")
write_truth(
    history=truth.history,
    total_epochs=trainer.max_epochs,
    epochs_done=trainer.current_epoch,
    epoch_base=0,
    accuracy_key="val_acc",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="trainer.callback_metrics['val_acc'] at each on_validation_end; trainer.test()'s result",
    notes="the default (Rich) bar prints val_acc on stdout at exit; the callbacks' messages "
    "(stderr: 'Epoch 2, global step 75: 'val_acc' reached 0.61333 (best 0.61333)', 'New best "
    "score') name the best so far, epochs 0-based; EarlyStopping stops before max_epochs; "
    "test_acc (after training, of the best checkpoint, in a table) is in test_accuracy, not in "
    "history",
    test_accuracy=float(result["test_acc"]),
)
