"""A plain training script that prints with print() and never flushes (no -u).

On a pipe, without PYTHONUNBUFFERED, all its lines arrive together at exit.
"""

import time

import torch
from _data import blobs
from _truth import write_truth
from torch import nn

EPOCHS = 5
torch.manual_seed(0)
x, y = blobs(3000, seed=1)
xv, yv = blobs(400, seed=2)
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
opt = torch.optim.SGD(model.parameters(), lr=0.02)
loss_fn = nn.CrossEntropyLoss()
print(f"Training on {len(x)} samples for {EPOCHS} epochs")
history = []
for epoch in range(EPOCHS):
    t0 = time.time()
    for i in range(0, len(x), 32):
        opt.zero_grad()
        loss = loss_fn(model(x[i : i + 32]), y[i : i + 32])
        loss.backward()
        opt.step()
    time.sleep(0.6)  # a bigger model's epoch
    with torch.no_grad():
        acc = (model(xv).argmax(1) == yv).float().mean().item()
    history.append(acc)
    print(f"Epoch {epoch + 1}/{EPOCHS} - loss: {loss.item():.4f} - val_acc: {acc:.4f} - {time.time() - t0:.1f}s")
print("Training finished.")

write_truth(
    history=history,
    total_epochs=EPOCHS,
    epoch_base=1,
    accuracy_key="val_acc",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="the script's own loop variables",
)
