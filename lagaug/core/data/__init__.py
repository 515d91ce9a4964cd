"""Data: the image-set model (:mod:`.dataset`), where images come from (:mod:`.sources`: image
folders via :mod:`.images` and :mod:`.depth`, ``.npz`` arrays via :mod:`.npz`, the embedded default
set of :mod:`.synthetic`), unlabelled pools streamed a batch at a time (:mod:`.pools`), the one
stratified splitter (:mod:`.splits`) and content fingerprints (:mod:`.identity`)."""

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
