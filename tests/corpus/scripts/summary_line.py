"""A script that prints a summary line after its last epoch, with the best epoch's accuracy."""

import torch
from _data import blobs
from _truth import write_truth
from torch import nn

EPOCHS = 6
torch.manual_seed(3)
x, y = blobs(1500, seed=5, spread=1.5)
xv, yv = blobs(60, seed=6, spread=1.5)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
history, best, best_epoch = [], 0.0, 0
for epoch in range(1, EPOCHS + 1):
    for i in range(0, len(x), 50):
        opt.zero_grad()
        loss = loss_fn(model(x[i : i + 50]), y[i : i + 50])
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(xv).argmax(1) == yv).float().mean().item()
    history.append(acc)
    if acc > best:
        best, best_epoch = acc, epoch
    print(f"epoch {epoch} | train_loss {loss.item():.4f} | val_acc {acc:.4f}", flush=True)
print(f"Best val_acc: {best:.4f} at epoch {best_epoch}", flush=True)

write_truth(
    history=history,
    total_epochs=EPOCHS,
    epoch_base=1,
    accuracy_key="val_acc",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="the script's own loop variables",
    notes="the last line is a summary of the best epoch, not a new accuracy",
    best_epoch=best_epoch,
)
