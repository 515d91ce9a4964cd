"""Data: the image-set model, dataset sources (folders, .npz, the embedded default)."""

from lagaug.core.data.dataset import DataSplits, ImagePool, ImageSet, InMemoryPool, to_uint8
from lagaug.core.data.sources import load_data, load_unlabeled
from lagaug.core.data.synthetic import make_default_splits

__all__ = [
    "DataSplits",
    "ImagePool",
    "ImageSet",
    "InMemoryPool",
    "load_data",
    "load_unlabeled",
    "make_default_splits",
    "to_uint8",
]
