"""A script that prints its config (with accuracy-like settings that are not accuracies), trains
two epochs and then dies with a traceback (exit code 1): an unfinished run."""

import argparse

import torch
from _data import blobs
from _truth import write_truth
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--target-accuracy", type=float, default=0.99)
p.add_argument("--min-accuracy-required", type=float, default=0.9)
args = p.parse_args()
print(args, flush=True)
print(f"baseline_accuracy=0.25 accuracy_threshold={args.min_accuracy_required}", flush=True)
torch.manual_seed(0)
x, y = blobs(2000, seed=1)
xv, yv = blobs(300, seed=2)
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
history = []
for epoch in range(1, args.epochs + 1):
    if epoch == 3:
        write_truth(
            history=history,
            total_epochs=args.epochs,
            epoch_base=1,
            accuracy_key="val_acc",
            accuracy_scale="fraction",
            accuracy_stream="stdout",
            source="the script's own loop variables",
            notes="target_accuracy, min_accuracy_required, baseline_accuracy and "
            "accuracy_threshold are settings, not accuracies; the run dies in epoch 3",
            expected_exit_code=1,
        )
        raise RuntimeError("data shard 3 is corrupt: unexpected end of file")
    for i in range(0, len(x), args.batch_size):
        opt.zero_grad()
        loss = loss_fn(model(x[i : i + args.batch_size]), y[i : i + args.batch_size])
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(xv).argmax(1) == yv).float().mean().item()
    history.append(acc)
    print(f"epoch {epoch}/{args.epochs} train_loss={loss.item():.4f} val_acc={acc:.4f}", flush=True)
