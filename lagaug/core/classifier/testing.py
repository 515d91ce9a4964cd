"""A tiny image set and an ensemble setting that learns it in seconds on one core, for tests.

Tests that compare figures (determinism, resume, arms) need classifiers whose figures can differ:
an ensemble that learns nothing reports AUC 1.0 or 0.5 whatever it is given. :func:`learnable_splits`
makes a small, imbalanced three-class set of 16x16 gray images that :data:`TEST_ENSEMBLE` learns in
about a second per member (macro-F1 and balanced accuracy far above chance, validation loss falling,
the kept epoch not the first):

* ``ok`` (the majority): a noisy gray surface;
* ``spot``: the same with a bright 4x4 square somewhere;
* ``line``: the same with a dark one-pixel line across it, horizontal or vertical.

Every image is a pure function of ``(seed, split, index)``.
"""

from __future__ import annotations

import torch

from lagaug.core.classifier.config import EnsembleConfig, resolve_ensemble_config
from lagaug.core.data.dataset import ImageSet

CLASS_NAMES = ["ok", "spot", "line"]
COUNTS = {"train": (40, 8, 8), "val": (10, 4, 4), "test": (30, 15, 15)}

#: Overrides of the ``cpu`` preset for test-size ensembles (with :func:`learnable_splits`).
TEST_ENSEMBLE: dict = dict(members=2, epochs=10, batch_size=16, min_epoch_size=64, warmup_epochs=1,
                           lr=5e-3, aug="light")


def test_ensemble_config(**overrides) -> EnsembleConfig:
    """The ``cpu`` preset with :data:`TEST_ENSEMBLE` and then ``overrides`` applied."""
    return resolve_ensemble_config("cpu", {**TEST_ENSEMBLE, **overrides}, source="test ensemble")


test_ensemble_config.__test__ = False  # not a pytest test, despite its name


def learnable_images(labels: torch.Tensor, generator: torch.Generator, size: int = 16,
                     contrast: float = 0.45) -> torch.Tensor:
    """Float images ``(N, 1, size, size)`` in ``[0, 1]`` of the classes ``labels`` (0, 1, 2); the
    spot and the line differ from the surface by ``contrast`` (its noise has s.d. 0.12)."""
    n = len(labels)
    x = 0.5 + 0.12 * torch.randn(n, 1, size, size, generator=generator)
    for i, label in enumerate(labels.tolist()):
        if label == 1:
            r, c = torch.randint(0, size - 4, (2,), generator=generator).tolist()
            x[i, :, r : r + 4, c : c + 4] += contrast
        elif label == 2:
            at = int(torch.randint(2, size - 2, (1,), generator=generator))
            if torch.rand(1, generator=generator) < 0.5:
                x[i, :, at, :] -= contrast
            else:
                x[i, :, :, at] -= contrast
    return x.clamp(0, 1)


def learnable_set(counts: tuple[int, ...], seed: int, split: str = "train", size: int = 16,
                  contrast: float = 0.45) -> ImageSet:
    """``counts[c]`` images of class ``c``, in class order, drawn from ``seed`` and ``split``."""
    g = torch.Generator().manual_seed(seed * 1000 + ("train", "val", "test").index(split))
    labels = torch.cat([torch.full((k,), c) for c, k in enumerate(counts)])
    images = learnable_images(labels, g, size, contrast)
    return ImageSet(images=images, labels=labels, class_names=CLASS_NAMES[: len(counts)],
                    ids=[f"{split}/{i:04d}" for i in range(len(labels))])


def learnable_splits(seed: int = 0, size: int = 16) -> tuple[ImageSet, ImageSet, ImageSet]:
    """Train (40/8/8), validation (8/3/3) and test (30/15/15) sets of the three classes."""
    return tuple(learnable_set(COUNTS[s], seed, s, size) for s in ("train", "val", "test"))


def save_learnable_npz(path, seed: int = 0, size: int = 16, contrast: float = 0.25,
                       counts: tuple[int, int, int] = (60, 15, 15)) -> None:
    """Write a learnable set as an ``.npz`` that ``load_data`` reads (for CLI and loop tests):
    ``x_train`` holds ``counts`` images per class (``load_data`` carves 20% of each for
    validation), ``x_test`` 30 / 15 / 15. Fainter than :func:`learnable_splits` (``contrast``
    0.25), so that :data:`TEST_ENSEMBLE` learns it well but not perfectly and figures can differ:
    at ``image_size=16`` test AUC 0.94-0.97 and macro-F1 0.82-0.90 (32 px: AUC 0.99-1.0)."""
    import numpy as np

    train = learnable_set(counts, seed, "train", size, contrast)
    test = learnable_set(COUNTS["test"], seed, "test", size, contrast)
    np.savez(path, x_train=train.images[:, 0].numpy(), y_train=train.labels.numpy(),
             x_test=test.images[:, 0].numpy(), y_test=test.labels.numpy(), class_names=np.array(CLASS_NAMES))
