"""The output of torchvision's reference classification script (references/classification/
train.py with utils.MetricLogger, github.com/pytorch/vision), reproduced: real torchvision
(ImageFolder, resnet18, transforms) and the reference's training/evaluation loop and print
formats, on a tiny generated image folder. The reference scripts are not shipped with
torchvision; see tests/corpus/README.md.
"""

import argparse
import datetime
import os
import time
from collections import defaultdict, deque

import torch
import torchvision
from _images import make_image_folder
from _truth import write_truth
from torch import nn
from torchvision import transforms as T


class SmoothedValue:
    """As in references/classification/utils.py."""

    def __init__(self, window_size=20, fmt=None):
        self.deque = deque(maxlen=window_size)
        self.total, self.count = 0.0, 0
        self.fmt = fmt or "{median:.4f} ({global_avg:.4f})"

    def update(self, value, n=1):
        self.deque.append(value)
        self.count += n
        self.total += value * n

    def __str__(self):
        d = torch.tensor(list(self.deque))
        return self.fmt.format(median=d.median().item(), avg=d.float().mean().item(),
                               global_avg=self.total / self.count, max=max(self.deque),
                               value=self.deque[-1])

    @property
    def global_avg(self):
        return self.total / self.count


class MetricLogger:
    """As in references/classification/utils.py (the CPU branch: no 'max mem')."""

    def __init__(self, delimiter="\t"):
        self.meters = defaultdict(SmoothedValue)
        self.delimiter = delimiter

    def update(self, **kwargs):
        for k, v in kwargs.items():
            self.meters[k].update(v.item() if isinstance(v, torch.Tensor) else v)

    def add_meter(self, name, meter):
        self.meters[name] = meter

    def __str__(self):
        return self.delimiter.join(f"{name}: {meter}" for name, meter in self.meters.items())

    def log_every(self, iterable, print_freq, header=""):
        i = 0
        start_time = end = time.time()
        iter_time, data_time = SmoothedValue(fmt="{avg:.4f}"), SmoothedValue(fmt="{avg:.4f}")
        space_fmt = ":" + str(len(str(len(iterable)))) + "d"
        log_msg = self.delimiter.join(
            [header, "[{0" + space_fmt + "}/{1}]", "eta: {eta}", "{meters}", "time: {time}", "data: {data}"]
        )
        for obj in iterable:
            data_time.update(time.time() - end)
            yield obj
            iter_time.update(time.time() - end)
            if i % print_freq == 0:
                eta_seconds = iter_time.global_avg * (len(iterable) - i)
                eta_string = str(datetime.timedelta(seconds=int(eta_seconds)))
                print(log_msg.format(i, len(iterable), eta=eta_string, meters=str(self),
                                     time=str(iter_time), data=str(data_time)))
            i += 1
            end = time.time()
        total_time_str = str(datetime.timedelta(seconds=int(time.time() - start_time)))
        print(f"{header} Total time: {total_time_str}")


def accuracy(output, target, topk=(1,)):
    with torch.inference_mode():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        correct = pred.t().eq(target[None])
        return [correct[:k].flatten().sum(dtype=torch.float32) * (100.0 / batch_size) for k in topk]


def train_one_epoch(model, criterion, optimizer, data_loader, epoch, args):
    model.train()
    metric_logger = MetricLogger(delimiter="  ")
    metric_logger.add_meter("lr", SmoothedValue(window_size=1, fmt="{value}"))
    metric_logger.add_meter("img/s", SmoothedValue(window_size=10, fmt="{value}"))
    header = f"Epoch: [{epoch}]"
    for image, target in metric_logger.log_every(data_loader, args.print_freq, header):
        start_time = time.time()
        output = model(image)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        acc1, acc5 = accuracy(output, target, topk=(1, 5))
        batch_size = image.shape[0]
        metric_logger.update(loss=loss.item(), lr=optimizer.param_groups[0]["lr"])
        metric_logger.meters["acc1"].update(acc1.item(), n=batch_size)
        metric_logger.meters["acc5"].update(acc5.item(), n=batch_size)
        metric_logger.meters["img/s"].update(batch_size / (time.time() - start_time))


def evaluate(model, criterion, data_loader, print_freq=100, log_suffix=""):
    model.eval()
    metric_logger = MetricLogger(delimiter="  ")
    header = f"Test: {log_suffix}"
    with torch.inference_mode():
        for image, target in metric_logger.log_every(data_loader, print_freq, header):
            output = model(image)
            loss = criterion(output, target)
            acc1, acc5 = accuracy(output, target, topk=(1, 5))
            batch_size = image.shape[0]
            metric_logger.update(loss=loss.item())
            metric_logger.meters["acc1"].update(acc1.item(), n=batch_size)
            metric_logger.meters["acc5"].update(acc5.item(), n=batch_size)
    print(f"{header} Acc@1 {metric_logger.meters['acc1'].global_avg:.3f} "
          f"Acc@5 {metric_logger.meters['acc5'].global_avg:.3f}")
    return metric_logger.meters["acc1"].global_avg


p = argparse.ArgumentParser(description="PyTorch Classification Training")
p.add_argument("--data-path", default="data")
p.add_argument("--model", default="resnet18")
p.add_argument("--device", default="cpu")
p.add_argument("-b", "--batch-size", default=16, type=int)
p.add_argument("--epochs", default=4, type=int)
p.add_argument("-j", "--workers", default=0, type=int)
p.add_argument("--lr", default=0.05, type=float)
p.add_argument("--print-freq", default=5, type=int)
p.add_argument("--start-epoch", default=0, type=int)
args = p.parse_args()
torch.manual_seed(0)
make_image_folder(args.data_path, {"train": 30, "val": 10}, classes=6)
print("Not using distributed mode")
print(args)
print("Loading data")
print("Loading training data")
st = time.time()
norm = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
dataset = torchvision.datasets.ImageFolder(
    os.path.join(args.data_path, "train"),
    T.Compose([T.RandomResizedCrop(32, scale=(0.5, 1.0)), T.RandomHorizontalFlip(), T.ToTensor(), norm]),
)
print("Took", time.time() - st)
print("Loading validation data")
dataset_test = torchvision.datasets.ImageFolder(
    os.path.join(args.data_path, "val"), T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor(), norm])
)
print("Creating data loaders")
data_loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                          num_workers=args.workers)
data_loader_test = torch.utils.data.DataLoader(dataset_test, batch_size=args.batch_size,
                                               num_workers=args.workers)
print("Creating model")
model = torchvision.models.get_model(args.model, weights=None, num_classes=len(dataset.classes))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
print("Start training")
start_time = time.time()
history = []
for epoch in range(args.start_epoch, args.epochs):
    train_one_epoch(model, criterion, optimizer, data_loader, epoch, args)
    lr_scheduler.step()
    history.append(evaluate(model, criterion, data_loader_test) / 100)
total_time_str = str(datetime.timedelta(seconds=int(time.time() - start_time)))
print(f"Training time {total_time_str}")

write_truth(
    history=history,
    total_epochs=args.epochs,
    epoch_base=0,
    accuracy_key="Acc@1",
    accuracy_scale="percent",
    accuracy_stream="stdout",
    source="evaluate()'s return value (metric_logger.acc1.global_avg) per epoch",
    notes="'Epoch: [N]' is 0-based; per-batch acc1 lines are training accuracies; no total printed",
    total_epochs_printed=False,
    reproduced=True,
)
