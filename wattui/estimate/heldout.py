"""Held-out architectures for validating estimates, written here (torchvision is not needed).

None of them was used to fit a predictor or to choose a predictor's form: they are the test.
Layouts follow the published models (torchvision's ResNet-18, MobileNetV2, EfficientNet-B0;
timm's ViT-Tiny/16), simplified where it does not change the work (no stochastic depth).
The functional CNN and the LSTM classifier exercise functional calls and recurrent layers.
"""

from __future__ import annotations

from wattui.estimate.archs import vgg

# name -> (builder, per-sample input shape, input dtype, dense reference for normalising)
MODELS: dict = {}


def _register(name: str, shape: tuple[int, ...], dtype: str = "float32", dense: bool = False):
    def deco(fn):
        MODELS[name] = (fn, shape, dtype, dense)
        return fn
    return deco


@_register("resnet18", (3, 224, 224), dense=True)
def resnet18(num_classes: int = 1000):
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + idt)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cfg = [(64, 1), (128, 2), (256, 2), (512, 2)]
            cin = 64
            for i, (c, s) in enumerate(cfg, 1):
                setattr(self, f"layer{i}", nn.Sequential(Basic(cin, c, s), Basic(c, c, 1)))
                cin = c
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet()


def _conv_bn(cin, cout, k, s, groups=1, act="relu6"):
    from torch import nn

    a = {"relu6": lambda: nn.ReLU6(inplace=True), "silu": lambda: nn.SiLU(inplace=True),
         None: nn.Identity}[act]()
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), a)


@_register("mobilenet_v2", (3, 224, 224))
def mobilenet_v2(num_classes: int = 1000):
    from torch import nn

    class Inverted(nn.Module):
        def __init__(self, cin, cout, s, t):
            super().__init__()
            hid = cin * t
            layers = [_conv_bn(cin, hid, 1, 1)] if t != 1 else []
            layers += [_conv_bn(hid, hid, 3, s, groups=hid), _conv_bn(hid, cout, 1, 1, act=None)]
            self.conv = nn.Sequential(*layers)
            self.res = s == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.res else self.conv(x)

    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]
    feats = [_conv_bn(3, 32, 3, 2)]
    cin = 32
    for t, c, n, s in cfg:
        for i in range(n):
            feats.append(Inverted(cin, c, s if i == 0 else 1, t))
            cin = c
    feats.append(_conv_bn(cin, 1280, 1, 1))

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(x.flatten(1))

    return MobileNetV2()


@_register("efficientnet_b0", (3, 224, 224))
def efficientnet_b0(num_classes: int = 1000):
    from torch import nn

    class SE(nn.Module):
        def __init__(self, c, sq):
            super().__init__()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc1, self.fc2 = nn.Conv2d(c, sq, 1), nn.Conv2d(sq, c, 1)
            self.act, self.gate = nn.SiLU(inplace=True), nn.Sigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))

    class MBConv(nn.Module):
        def __init__(self, cin, cout, k, s, t):
            super().__init__()
            hid = cin * t
            layers = [_conv_bn(cin, hid, 1, 1, act="silu")] if t != 1 else []
            layers += [_conv_bn(hid, hid, k, s, groups=hid, act="silu"),
                       SE(hid, max(1, cin // 4)), _conv_bn(hid, cout, 1, 1, act=None)]
            self.block = nn.Sequential(*layers)
            self.res = s == 1 and cin == cout

        def forward(self, x):
            return x + self.block(x) if self.res else self.block(x)

    cfg = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
           (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
    feats = [_conv_bn(3, 32, 3, 2, act="silu")]
    cin = 32
    for t, k, s, c, n in cfg:
        for i in range(n):
            feats.append(MBConv(cin, c, k, s if i == 0 else 1, t))
            cin = c
    feats.append(_conv_bn(cin, 1280, 1, 1, act="silu"))

    class EfficientNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*feats)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            return self.classifier(self.avgpool(self.features(x)).flatten(1))

    return EfficientNet()


@_register("vit_tiny", (3, 224, 224), dense=True)
def vit_tiny(num_classes: int = 1000, dim: int = 192, depth: int = 12, heads: int = 3):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v)
            return self.proj(y.transpose(1, 2).reshape(b, n, d))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attn = Attention()
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, dim, 16, 16)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(torch.zeros(1, 197, dim))
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, num_classes)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            return self.head(self.norm(self.blocks(x))[:, 0])

    return ViT()


@_register("residual_mlp", (1024,), dense=True)
def residual_mlp(width: int = 1024, depth: int = 6, num_classes: int = 100):
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(width)
            self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(),
                                    nn.Linear(2 * width, width))

        def forward(self, x):
            return x + self.ff(self.norm(x))

    return nn.Sequential(*[Block() for _ in range(depth)], nn.Linear(width, num_classes))


@_register("functional_cnn", (3, 128, 128))
def functional_cnn(num_classes: int = 100):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class FunctionalCNN(nn.Module):
        """Only convolutions and the classifier are modules; the rest is functional."""

        def __init__(self):
            super().__init__()
            chans = [3, 32, 64, 128, 256]
            self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1)
                                       for a, b in zip(chans, chans[1:]))
            self.fc1, self.fc2 = nn.Linear(256 * 8 * 8, 512), nn.Linear(512, num_classes)

        def forward(self, x):
            for conv in self.convs:
                x = F.max_pool2d(F.relu(conv(x)), 2)
            x = torch.flatten(x, 1)
            return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5, self.training))

    return FunctionalCNN()


@_register("lstm_classifier", (64,), dtype="int64")
def lstm_classifier(vocab: int = 10000, emb: int = 128, hidden: int = 256,
                    num_classes: int = 4):
    from torch import nn

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, emb)
            self.lstm = nn.LSTM(emb, hidden, num_layers=2, batch_first=True)
            self.fc = nn.Linear(hidden, num_classes)

        def forward(self, ids):
            out, _ = self.lstm(self.emb(ids))
            return self.fc(out[:, -1])

    return LSTMClassifier()


@_register("vgg11", (3, 224, 224))
def vgg11():
    return vgg("vgg11")


@_register("vgg16", (3, 224, 224))
def vgg16():
    return vgg("vgg16")
