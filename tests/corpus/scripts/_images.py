"""A tiny generated image-folder data set (PNG files) for the reference classification scripts."""

from __future__ import annotations

import os


def make_image_folder(root: str, splits: dict[str, int], classes: int = 4, size: int = 32,
                      seed: int = 0) -> None:
    """``root/SPLIT/class_K/N.png``: ``splits[SPLIT]`` images per class; each class a colour
    and stripe direction, with noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for split, per_class in splits.items():
        for k in range(classes):
            d = os.path.join(root, split, f"class_{k}")
            os.makedirs(d, exist_ok=True)
            for n in range(per_class):
                phase = rng.uniform(0, 6.3)
                wave = np.sin((xx if k % 2 else yy) * (0.5 + 0.2 * (k // 2)) + phase)
                base = np.stack([wave * (40 + 30 * ((k + c) % 3)) for c in range(3)], -1) + 128
                img = base + rng.normal(0, 60, base.shape)
                Image.fromarray(img.clip(0, 255).astype("uint8")).save(os.path.join(d, f"{n}.png"))
