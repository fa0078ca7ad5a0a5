"""The style of many PyTorch tutorials (e.g. yunjey/pytorch-tutorial): 'Epoch [1/5], Step
[100/188], Loss: ...' during training, and one test accuracy in percent at the end."""

import torch
from _data import blobs
from _truth import write_truth
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

num_epochs = 5
torch.manual_seed(0)
x, y = blobs(3000, seed=1)
xt, yt = blobs(1000, seed=2)
train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
test_loader = DataLoader(TensorDataset(xt, yt), batch_size=100)
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
total_step = len(train_loader)
for epoch in range(num_epochs):
    for i, (images, labels) in enumerate(train_loader):
        outputs = model(images)
        loss = criterion(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (i + 1) % 50 == 0:
            print(f"Epoch [{epoch + 1}/{num_epochs}], Step [{i + 1}/{total_step}], Loss: {loss.item():.4f}")

model.eval()
with torch.no_grad():
    correct = 0
    total = 0
    for images, labels in test_loader:
        outputs = model(images)
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
    print(f"Accuracy of the network on the {total} test images: {100 * correct / total} %")

write_truth(
    history=[correct / total],
    history_unit="run",
    total_epochs=num_epochs,
    epochs_done=num_epochs,
    epoch_base=1,
    accuracy_key="Accuracy of the network",
    accuracy_scale="percent",
    accuracy_stream="stdout",
    source="the script's own variables (correct / total)",
    notes="no accuracy during training; one test accuracy after the last epoch, in percent "
    "with a space before %",
)
