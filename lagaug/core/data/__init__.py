"""Data: the image-set model, dataset sources (folders, .npz, the embedded default)."""

from lagaug.core.data.dataset import DataSplits, ImagePool, ImageSet, InMemoryPool, to_uint8

__all__ = ["DataSplits", "ImagePool", "ImageSet", "InMemoryPool", "to_uint8"]
