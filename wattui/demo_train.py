"""A small, real PyTorch training run for `wattui demo` and ``sample_runs/``.

An image classifier trained on the CPU on a data set made on the fly (no downloads):
3x16x16 images of a few kinds of shape and texture (stripes, rings, squares, crosses,
checkers, blobs...), at random places, in random colours, with noise. Everything is seeded,
so the same flags give the same data and (up to float rounding) the same accuracy.

Three models of different sizes, so accuracy and energy really differ::

    mlp       a small multilayer perceptron (fast, the weakest on shifted shapes)
    cnn       a small convolutional network
    wide-cnn  a wider, deeper convolutional network (slowest, usually the most accurate)

After each epoch it reports to wattui (``wattui.report(accuracy=..., epoch=...)``) and
prints a plain line that log parsing also understands::

    epoch 3/10 loss 0.4100 val_accuracy 0.8730

Run it as ``python -m wattui.demo_train --model cnn --epochs 8`` (or through the thin
wrapper ``sample_runs/train.py``). Needs torch; wattui itself is optional.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

MODELS = ("mlp", "cnn", "wide-cnn")
DEFAULT_MODEL = "cnn"
DEFAULT_EPOCHS = 15
SIZE = 16
CLASSES = ("h-stripes", "v-stripes", "diagonal", "ring", "square", "cross", "checker", "blob")


try:  # wattui is optional: without it the run still trains and prints its epoch lines
    from wattui import report as _report
except Exception:  # noqa: BLE001 - ImportError, or a broken install: never stop training

    def _report(**values) -> None:
        return None


def report(**values) -> None:
    try:
        _report(**values)
    except Exception:  # noqa: BLE001 - reporting must never end a training run
        pass


# -- data -----------------------------------------------------------------------------
def make_data(n: int, seed: int, classes: int = len(CLASSES), noise: float = 0.6):
    """``n`` images (float32, N x 3 x 16 x 16) and labels, generated from ``seed``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32),
        torch.arange(SIZE, dtype=torch.float32),
        indexing="ij",
    )
    labels = torch.randint(0, classes, (n,), generator=g)
    # Per image: a centre (shapes are placed anywhere), a scale, a phase and a colour.
    cx = torch.rand(n, generator=g) * 8 + 4
    cy = torch.rand(n, generator=g) * 8 + 4
    r = torch.rand(n, generator=g) * 2.0 + 2.5
    phase = torch.rand(n, generator=g) * 2 * math.pi
    period = torch.rand(n, generator=g) * 2.0 + 3.0
    colour = torch.rand(n, 3, generator=g) * 0.7 + 0.3
    x = xx.expand(n, SIZE, SIZE)
    y = yy.expand(n, SIZE, SIZE)
    dx = x - cx[:, None, None]
    dy = y - cy[:, None, None]
    rr = r[:, None, None]
    w = 2 * math.pi / period[:, None, None]
    ph = phase[:, None, None]
    dist = torch.sqrt(dx**2 + dy**2)
    inside = (dx.abs() <= rr + 1) & (dy.abs() <= rr + 1)  # a window around the centre
    shapes = [
        ((torch.sin(w * y + ph) > 0) & inside).float(),  # horizontal stripes
        ((torch.sin(w * x + ph) > 0) & inside).float(),  # vertical stripes
        ((torch.sin(w * (x + y) / 1.4 + ph) > 0) & inside).float(),  # diagonal stripes
        ((dist - rr).abs() < 0.9).float(),  # ring
        (
            ((dx.abs() - rr).abs() < 0.9) & (dy.abs() <= rr + 0.5)
            | ((dy.abs() - rr).abs() < 0.9) & (dx.abs() <= rr + 0.5)
        ).float(),  # square outline
        (((dx.abs() < 0.9) | (dy.abs() < 0.9)) & inside).float(),  # cross
        (((torch.floor(dx / 2) + torch.floor(dy / 2)) % 2 == 0) & inside).float(),  # checker
        torch.exp(-(dist**2) / (2 * (rr / 1.5) ** 2)),  # blob
    ]
    stack = torch.stack(shapes[:classes], dim=1)  # N x C x H x W
    mask = stack[torch.arange(n), labels]  # N x H x W
    imgs = mask[:, None] * colour[:, :, None, None]
    imgs = imgs + noise * torch.randn(n, 3, SIZE, SIZE, generator=g)
    return imgs.float(), labels


# -- models ---------------------------------------------------------------------------
def build_model(name: str, classes: int = len(CLASSES)):
    from torch import nn

    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(3 * SIZE * SIZE, 128),
            nn.ReLU(),
            nn.Linear(128, classes),
        )
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, classes),
        )
    if name == "wide-cnn":
        return nn.Sequential(
            nn.Conv2d(3, 48, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(48, 48, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(48, 96, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(96 * 4 * 4, 128),
            nn.ReLU(),
            nn.Linear(128, classes),
        )
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# -- training -------------------------------------------------------------------------
def evaluate(model, x, y, batch_size: int = 500) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += (
                (model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum().item()
            )
    model.train()
    return correct / max(1, len(x))


def train(args) -> int:
    import torch
    from torch import nn

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    t0 = time.monotonic()
    x_train, y_train = make_data(args.train_size, args.seed, args.classes, args.noise)
    x_val, y_val = make_data(args.val_size, args.seed + 10_000, args.classes, args.noise)
    model = build_model(args.model, args.classes)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    print(
        f"demo: model {args.model} ({count_params(model):,} parameters), "
        f"{args.train_size} training / {args.val_size} validation images of {args.classes} "
        f"classes, {args.epochs} epochs, {args.threads} thread(s)",
        flush=True,
    )
    g = torch.Generator().manual_seed(args.seed + 1)
    best = 0.0
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(x_train), generator=g)
        total, batches = 0.0, 0
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i : i + args.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        train_loss = total / max(1, batches)
        acc = evaluate(model, x_val, y_val)
        best = max(best, acc)
        report(
            accuracy=acc,
            epoch=epoch,
            total_epochs=args.epochs,
            loss=train_loss,
            model=args.model,
        )
        print(
            f"epoch {epoch}/{args.epochs} loss {train_loss:.4f} val_accuracy {acc:.4f}",
            flush=True,
        )
    print(f"demo: done in {time.monotonic() - t0:.1f} s, best val_accuracy {best:.4f}", flush=True)
    return 0


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="A small image classifier trained on the CPU on made-up images "
        "(the wattui demo run).",
    )
    p.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL, help="default: %(default)s")
    p.add_argument(
        "--epochs", type=_positive_int, default=DEFAULT_EPOCHS, help="default: %(default)s"
    )
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="torch threads (default 1, so the run leaves a core to the recorder)",
    )
    p.add_argument("--train-size", type=_positive_int, default=20000, help="default: %(default)s")
    p.add_argument("--val-size", type=_positive_int, default=1000, help="default: %(default)s")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=2e-3, help="default: %(default)s")
    p.add_argument("--noise", type=float, default=0.6, help="pixel noise (default %(default)s)")
    p.add_argument(
        "--classes",
        type=int,
        choices=range(2, len(CLASSES) + 1),
        default=len(CLASSES),
        metavar=f"2..{len(CLASSES)}",
        help="number of classes (default %(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print(
            "demo: this training run needs PyTorch: pip install 'wattui[torch]' "
            "(or a CPU build of torch)",
            file=sys.stderr,
        )
        return 3
    try:
        return train(args)
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
