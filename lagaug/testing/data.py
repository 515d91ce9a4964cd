"""Tiny data sets that a tiny classifier can learn in seconds — but not perfectly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lagaug.core.data.dataset import DataSplits, ImageSet


def _images(n: int, size: int, labels: np.ndarray, rng: np.random.Generator, contrast: float) -> np.ndarray:
    """Noisy gray backgrounds; class ``c`` > 0 carries a bright square whose side grows with ``c``,
    at a random place, of random strength (some faint: the classes overlap a little)."""
    x = rng.normal(90, 28, (n, size, size))
    for i, c in enumerate(labels):
        if c == 0:
            continue
        side = max(2, size // 5 + int(c) - 1)
        r, col = rng.integers(0, size - side, size=2)
        x[i, r : r + side, col : col + side] += contrast * rng.uniform(0.3, 1.3)
    return np.clip(x, 0, 255).astype(np.uint8)


def learnable_set(n: int, *, size: int = 16, classes: int = 2, seed: int = 0, contrast: float = 90.0,
                  weights: list[float] | None = None, prefix: str = "img") -> ImageSet:
    """``n`` gray ``size`` x ``size`` images in ``classes`` classes (``weights``: class shares,
    for imbalanced sets). Class 0 is plain noise; class ``c`` > 0 adds a faint-to-bright square."""
    rng = np.random.default_rng(seed)
    p = np.ones(classes) / classes if weights is None else np.asarray(weights, float) / sum(weights)
    counts = np.maximum(1, np.round(p * n).astype(int))
    labels = np.repeat(np.arange(classes), counts)[:n]
    labels = labels[rng.permutation(len(labels))]
    x = _images(len(labels), size, labels, rng, contrast)
    return ImageSet(images=torch.from_numpy(x)[:, None], labels=torch.from_numpy(labels),
                    class_names=[f"c{k}" for k in range(classes)],
                    ids=[f"{prefix}/{i:04d}" for i in range(len(labels))])


def learnable_splits(n_train: int = 64, n_val: int = 24, n_test: int = 60, **kw) -> DataSplits:
    """Train / validation / test from :func:`learnable_set` with distinct seeds and ids."""
    seed = kw.pop("seed", 0)
    parts = {name: learnable_set(n, seed=seed + k, prefix=name, **kw)
             for k, (name, n) in enumerate((("train", n_train), ("val", n_val), ("test", n_test)))}
    return DataSplits(parts["train"], parts["val"], parts["test"], description="lagaug.testing learnable set",
                      extra={"source": "lagaug.testing", "carved": [], "split_seed": seed})


def learnable_npz(path: str | Path, n_train: int = 64, n_test: int = 60, **kw) -> Path:
    """:func:`learnable_set` train and test arrays saved as an ``.npz`` the loaders read."""
    seed = kw.pop("seed", 0)
    train = learnable_set(n_train, seed=seed, **kw)
    test = learnable_set(n_test, seed=seed + 1, **kw)
    np.savez(path, x_train=train.images[:, 0].numpy(), y_train=train.labels.numpy(),
             x_test=test.images[:, 0].numpy(), y_test=test.labels.numpy(),
             class_names=np.array(train.class_names))
    return Path(path)
