"""A script logging through Python's logging (stderr), with timestamps and key=value pairs."""

import logging

import torch
from _data import blobs
from _truth import write_truth
from torch import nn

logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
)
log = logging.getLogger("train")

EPOCHS = 4
torch.manual_seed(0)
x, y = blobs(2400, seed=11)
xv, yv = blobs(300, seed=12)
model = nn.Sequential(nn.Linear(16, 48), nn.ReLU(), nn.Linear(48, 4))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
log.info("start epochs=%d train_size=%d val_size=%d lr=%g", EPOCHS, len(x), len(xv), 1e-3)
history = []
step = 0
for epoch in range(1, EPOCHS + 1):
    correct = 0
    for i in range(0, len(x), 32):
        opt.zero_grad()
        out = model(x[i : i + 32])
        loss = loss_fn(out, y[i : i + 32])
        loss.backward()
        opt.step()
        correct += (out.argmax(1) == y[i : i + 32]).sum().item()
        step += 1
        if step % 25 == 0:
            batch_acc = (out.argmax(1) == y[i : i + 32]).float().mean().item()
            log.info("epoch=%d step=%d loss=%.4f acc=%.4f lr=%.1e", epoch, step, loss.item(), batch_acc, 1e-3)
    with torch.no_grad():
        vout = model(xv)
        val_loss = loss_fn(vout, yv).item()
        val_acc = (vout.argmax(1) == yv).float().mean().item()
    history.append(val_acc)
    log.info(
        "epoch=%d/%d train_acc=%.4f val_loss=%.4f val_acc=%.4f",
        epoch, EPOCHS, correct / len(x), val_loss, val_acc,
    )
log.info("done best_val_acc=%.4f", max(history))

write_truth(
    history=history,
    total_epochs=EPOCHS,
    epoch_base=1,
    accuracy_key="val_acc",
    accuracy_scale="fraction",
    accuracy_stream="stderr",
    source="the script's own loop variables",
    notes="per-step acc= is a training batch accuracy; the last line is a summary",
)
