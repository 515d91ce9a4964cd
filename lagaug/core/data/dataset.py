"""The data model shared by every stage: labelled image sets and streamed unlabelled pools.

Images are stored as ``uint8`` tensors of shape ``(N, C, H, W)`` (C is 1 or 3), so a few thousand
images cost little memory; :meth:`ImageSet.float_images` gives ``float32`` in ``[0, 1]``, which is
what every model and every plugin stage receives and returns.

Labels are class indices (``labels``, shape ``(N,)``). A set may also carry soft labels (``soft``,
shape ``(N, K)``, rows summing to 1) for methods that mix classes; :meth:`ImageSet.targets` returns
soft targets for every row either way.

Where the class evidence lies is data too: a set may carry a **mask** per image (``masks``, bool
``(N, H, W)``, true on the defect; all false for an image without one). Masks travel with their
images through :meth:`ImageSet.subset` and :meth:`ImageSet.concat` (a set without masks joins one
with masks as all-false masks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Convert float images in ``[0, 1]`` to ``uint8`` (values outside are clipped)."""
    if images.dtype == torch.uint8:
        return images
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


@dataclass
class ImageSet:
    """A labelled set of images with provenance.

    ``ids`` name every image uniquely (a file path relative to the data root, ``"npz:train/17"``,
    ``"synthetic/it1/00003"``, ...). ``synthetic`` marks images that lagaug made. ``sources`` gives,
    for a synthetic image, the id of the real image it was made from (``""`` for real ones).
    """

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    ids: list[str]
    soft: torch.Tensor | None = None  # float32 (N, K) or None
    synthetic: torch.Tensor | None = None  # bool (N,)
    sources: list[tuple[str, ...]] | None = None
    masks: torch.Tensor | None = None  # bool (N, H, W) or None

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        self.images = to_uint8(self.images)
        self.labels = self.labels.to(torch.int64).reshape(-1)
        if self.labels.shape[0] != n or len(self.ids) != n:
            raise ValueError(
                f"{n} images but {self.labels.shape[0]} labels and {len(self.ids)} ids"
            )
        if self.synthetic is None:
            self.synthetic = torch.zeros(n, dtype=torch.bool)
        if self.sources is None:
            self.sources = [()] * n
        self.sources = [tuple(s) for s in self.sources]
        if len(self.sources) != n:
            raise ValueError(f"{n} images but {len(self.sources)} source entries")
        if self.soft is not None and tuple(self.soft.shape) != (n, self.num_classes):
            raise ValueError(
                f"soft labels must be ({n}, {self.num_classes}), got {tuple(self.soft.shape)}"
            )
        if self.masks is not None:
            self.masks = torch.as_tensor(self.masks).to(torch.bool)
            if tuple(self.masks.shape) != (n, *self.images.shape[2:]):
                raise ValueError(f"masks must be ({n}, {self.images.shape[2]}, {self.images.shape[3]}), "
                                 f"got {tuple(self.masks.shape)}")

    # -- shape -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    @property
    def has_masks(self) -> bool:
        """Whether any image of the set has a non-empty mask."""
        return self.masks is not None and bool(self.masks.any())

    def mask_rows(self, index: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """Masks ``(n, H, W)`` bool of the rows in ``index`` (all rows: ``None``); all false where
        the set has none."""
        idx = torch.arange(len(self)) if index is None else torch.as_tensor(index, dtype=torch.long)
        if self.masks is None:
            return torch.zeros(len(idx), *self.image_size, dtype=torch.bool)
        return self.masks[idx]

    # -- views -------------------------------------------------------------------------------
    def float_images(self, index: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """Images as float32 in ``[0, 1]``; all of them, or the rows in ``index``."""
        imgs = self.images if index is None else self.images[torch.as_tensor(index, dtype=torch.long)]
        return imgs.float() / 255.0

    def targets(self) -> torch.Tensor:
        """Soft targets ``(N, K)``: the stored soft labels, or one-hot of ``labels``."""
        if self.soft is not None:
            return self.soft.float()
        return torch.nn.functional.one_hot(self.labels, self.num_classes).float()

    def subset(self, index: torch.Tensor | Sequence[int]) -> "ImageSet":
        idx = torch.as_tensor(index, dtype=torch.long)
        pick = idx.tolist()
        return ImageSet(
            images=self.images[idx],
            labels=self.labels[idx],
            class_names=list(self.class_names),
            ids=[self.ids[i] for i in pick],
            soft=None if self.soft is None else self.soft[idx],
            synthetic=self.synthetic[idx],
            sources=[self.sources[i] for i in pick],
            masks=None if self.masks is None else self.masks[idx],
        )

    def concat(self, other: "ImageSet") -> "ImageSet":
        """This set followed by ``other`` (same classes, same image shape)."""
        if other.class_names != self.class_names:
            raise ValueError(f"class names differ: {self.class_names} vs {other.class_names}")
        if other.images.shape[1:] != self.images.shape[1:]:
            raise ValueError(
                f"image shapes differ: {tuple(self.images.shape[1:])} vs {tuple(other.images.shape[1:])}"
            )
        soft = None
        if self.soft is not None or other.soft is not None:
            soft = torch.cat([self.targets(), other.targets()])
        masks = None
        if self.masks is not None or other.masks is not None:
            masks = torch.cat([self.mask_rows(), other.mask_rows()])
        return ImageSet(
            images=torch.cat([self.images, other.images]),
            labels=torch.cat([self.labels, other.labels]),
            class_names=list(self.class_names),
            ids=self.ids + other.ids,
            soft=soft,
            synthetic=torch.cat([self.synthetic, other.synthetic]),
            sources=self.sources + other.sources,
            masks=masks,
        )


class ImagePool(Protocol):
    """Unlabelled images (generator pre-training, pseudo-labels), streamed in batches, never held whole.

    ``iter_batches`` yields float32 tensors ``(B, C, H, W)`` in ``[0, 1]`` in an order drawn from
    ``generator`` (a seeded ``torch.Generator``), covering every image once per call.
    ``images_at(indices)`` gives images by index (same type and shape), and ``id_of(i)`` a stable
    id of image ``i`` (``"pool:17"``, or ``"pool:"`` and a file's path relative to the pool's
    folder) for provenance.
    """

    def __len__(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def image_size(self) -> tuple[int, int]: ...

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]: ...

    def images_at(self, indices: Sequence[int]) -> torch.Tensor: ...

    def id_of(self, i: int) -> str: ...


class SquarePool:
    """Shape properties shared by pools of ``image_side`` x ``image_side`` images with
    ``n_channels`` channels (subclasses define both attributes)."""

    @property
    def channels(self) -> int:
        return self.n_channels

    @property
    def image_size(self) -> tuple[int, int]:
        return self.image_side, self.image_side


@dataclass
class InMemoryPool:
    """An :class:`ImagePool` over an :class:`ImageSet` (labels ignored)."""

    data: ImageSet

    def __len__(self) -> int:
        return len(self.data)

    @property
    def channels(self) -> int:
        return self.data.channels

    @property
    def image_size(self) -> tuple[int, int]:
        return self.data.image_size

    def images_at(self, indices: Sequence[int]) -> torch.Tensor:
        return self.data.float_images(list(indices))

    def id_of(self, i: int) -> str:
        return f"pool:{self.data.ids[int(i)]}"

    def iter_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.data), generator=generator)
        for start in range(0, len(order), batch_size):
            yield self.data.float_images(order[start : start + batch_size])


@dataclass
class DataSplits:
    """Everything a run reads: train / validation / test sets and an optional unlabelled pool.

    ``val`` is carved from the training images when the source has none; it is used for early
    stopping and checkpoint choice, never the test set.
    """

    train: ImageSet
    val: ImageSet
    test: ImageSet
    unlabeled: ImagePool | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    def summary(self) -> dict:
        """What a practitioner needs to judge a run's data: images per class and split, what was
        carved from what and with which seed, the source, and any overlap found."""
        names = self.class_names
        counts = {
            name: dict(zip(names, part.class_counts()))
            for name, part in (("train", self.train), ("val", self.val), ("test", self.test))
        }
        out = {
            "description": self.description,
            "source": self.extra.get("source", "embedded default"),
            "classes": names,
            "channels": self.train.channels,
            "image_size": list(self.train.image_size),
            "counts": counts,
            "carved": self.extra.get("carved", []),
            "split_seed": self.extra.get("split_seed"),
            "unlabeled": None if self.unlabeled is None else len(self.unlabeled),
        }
        if any(part.masks is not None for part in (self.train, self.val, self.test)):
            out["masks"] = {name: int(part.mask_rows().flatten(1).any(1).sum())
                            for name, part in (("train", self.train), ("val", self.val), ("test", self.test))}
        for key in ("test_in_train", "val_in_train", "orientation_invariant", "full_scale"):
            if key in self.extra:
                out[key] = self.extra[key]
        return out

    def counts_line(self) -> str:
        """One line: images per class in every split, and what was carved from what."""
        summary = self.summary()
        parts = [f"{split} " + ", ".join(f"{name} {n}" for name, n in counts.items())
                 for split, counts in summary["counts"].items()]
        carved = summary["carved"]
        tail = (f" ({', '.join(carved)} carved from train, split seed {summary['split_seed']})" if carved else "")
        if "masks" in summary:
            tail += " · masks: " + ", ".join(f"{split} {n}" for split, n in summary["masks"].items())
        return "data: " + " · ".join(parts) + tail
