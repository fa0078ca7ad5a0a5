"""Models for the estimate tests (no tests here; the CLI loads them as ``tests/test_estimate_models.py:NAME``)."""

import torch
from torch import nn


class Doubler(nn.Module):
    """A custom leaf: its multiply is priced like any other (dispatch-level tracing)."""

    def forward(self, x):
        return x * 2


class RunningSum(nn.Module):
    """A custom leaf whose op (cumsum) has no energy model."""

    def forward(self, x):
        return x.cumsum(-1)


def small():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 15 * 15, 10), nn.Softmax(dim=1))


def huge():
    """160 GB of float32 weights: only estimable without allocating."""
    return nn.Sequential(nn.Linear(200_000, 200_000), nn.ReLU())


def odd():
    """Priced (Linear, Doubler's multiply, LSTM's cell ops) and unpriced (cumsum, transposed
    convolution) work side by side."""
    return nn.Sequential(nn.Linear(10, 10), Doubler(), RunningSum(), RunningSum(),
                         nn.ConvTranspose1d(5, 5, 3), nn.LSTM(12, 10))


def alexnet_like():
    """AlexNet as in torchvision (features / avgpool / classifier)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(),
        nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(True),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(True), nn.Linear(4096, 1000))


def vgg_like(cfg=(64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")):
    """VGG11 layout (no batch norm)."""
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(True)]
            c = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
                         nn.Linear(25088, 4096), nn.ReLU(True), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                         nn.Linear(4096, 1000))


class Block(nn.Module):
    """Pre-norm transformer block: LayerNorm, MultiheadAttention, GELU MLP."""

    def __init__(self, d=64, heads=4):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d),
                                 nn.Dropout(0.1))

    def forward(self, x):
        y = self.ln1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


def block():
    return Block()


class TokenModel(nn.Module):
    """Embedding + functional scaled-dot-product attention + head."""

    def __init__(self, vocab=1000, d=32, heads=4):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.qkv = nn.Linear(d, 3 * d)
        self.heads = heads
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        x = self.emb(ids)
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.head(y.transpose(1, 2).reshape(b, t, d))


def tokens():
    return TokenModel()


def not_a_module():
    return 42
