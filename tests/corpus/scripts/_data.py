"""Tiny, seeded, generated classification data (no downloads) shared by the corpus scripts."""

from __future__ import annotations


def blobs(n: int, features: int = 16, classes: int = 4, seed: int = 0, spread: float = 2.2):
    """``n`` points around ``classes`` fixed random centres, with noise: (x float32 N x F, y int64)."""
    import torch

    centres = torch.randn(classes, features, generator=torch.Generator().manual_seed(1234)) * 0.7
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, features, generator=g) * spread
    return x, y
