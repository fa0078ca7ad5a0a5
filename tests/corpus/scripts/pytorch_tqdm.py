"""A plain PyTorch loop with a tqdm bar (postfix loss=, acc= of training) and a val line."""

import torch
from _data import blobs
from _truth import write_truth
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

EPOCHS = 4
torch.manual_seed(0)
x, y = blobs(1600, seed=1)
xv, yv = blobs(400, seed=2)
train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
val_loader = DataLoader(TensorDataset(xv, yv), batch_size=50)
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
loss_fn = nn.CrossEntropyLoss()
history = []
for epoch in range(EPOCHS):
    model.train()
    correct = seen = 0
    pbar = tqdm(train_loader, desc=f"Epoch {epoch + 1}/{EPOCHS}")
    for xb, yb in pbar:
        opt.zero_grad()
        out = model(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        opt.step()
        correct += (out.argmax(1) == yb).sum().item()
        seen += len(yb)
        pbar.set_postfix(loss=f"{loss.item():.4f}", acc=f"{correct / seen:.3f}")
        torch.randn(60, 60) @ torch.randn(60, 60)  # a little more work per step
    model.eval()
    vc = vl = 0.0
    with torch.no_grad():
        for xb, yb in tqdm(val_loader, desc="Validating", leave=False):
            out = model(xb)
            vl += loss_fn(out, yb).item() * len(yb)
            vc += (out.argmax(1) == yb).sum().item()
    val_acc = vc / len(xv)
    history.append(val_acc)
    print(f"Epoch {epoch + 1}: val_loss={vl / len(xv):.4f}, val_acc={val_acc:.4f}")

write_truth(
    history=history,
    total_epochs=EPOCHS,
    epoch_base=1,
    accuracy_key="val_acc",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="the script's own loop variables",
    notes="tqdm (stderr) postfix acc= is the running training accuracy",
)
