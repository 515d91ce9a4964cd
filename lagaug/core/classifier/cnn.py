"""The small CNN of Garay-Maestre et al. (2019, Table 1), registered as timm models.

Table 1 (and the authors' released Keras code, which pads every convolution ``same``)::

    Conv(64, 3x3) Conv(128, 3x3) MaxPool(2x2) Drop(0.5)
    Conv(128, 3x3) Conv(128, 3x3) MaxPool(2x2) Drop(0.5)
    Flatten FC(128) Drop(0.5) FC(classes)

with ReLU after every convolution and the first dense layer, and Keras' initialisation (Glorot
uniform weights, zero biases). On 28x28 MNIST the flattened features are 7x7x128. Other image
sizes work too: the last feature map is average-pooled to 7x7 (the identity at 28 px).

Importing this module registers two names in timm's registry, so ``EnsembleConfig(classifier=...)``
and ``--classifier`` accept them:

* ``garay_cnn`` — Table 1 exactly (about 1.2 M weights at 28 px);
* ``garay_cnn_small`` — the same layers with a quarter of the filters (16/32/32/32), for CPU runs.
"""

from __future__ import annotations

import torch
from torch import nn

CLASSIFIERS = ("garay_cnn", "garay_cnn_small")


class GarayCNN(nn.Module):
    """Table 1's classifier; ``width`` scales the number of filters (1.0 = 64/128/128/128)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: float = 1.0,
                 hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        c1, c2 = max(1, round(64 * width)), max(1, round(128 * width))
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(dropout),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(dropout),
            nn.AdaptiveAvgPool2d((7, 7)),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 49, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for layer in self.modules():  # Keras defaults; draws from torch's (caller-seeded) RNG
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_chans, H, W)``."""
        return self.head(self.features(x))


def _build(width: float, num_classes: int = 10, in_chans: int = 1, pretrained: bool = False,
           **kwargs) -> GarayCNN:
    if pretrained:
        raise ValueError("garay_cnn has no pretrained weights; it is trained from scratch")
    drop = kwargs.get("drop_rate")
    return GarayCNN(num_classes, in_chans, width, dropout=0.5 if drop is None else float(drop))


def garay_cnn(pretrained: bool = False, num_classes: int = 10, in_chans: int = 1, **kwargs) -> GarayCNN:
    """Table 1's CNN (timm entry point; timm's other keyword arguments are ignored)."""
    return _build(1.0, num_classes, in_chans, pretrained, **kwargs)


def garay_cnn_small(pretrained: bool = False, num_classes: int = 10, in_chans: int = 1, **kwargs) -> GarayCNN:
    """Table 1's CNN with a quarter of the filters (timm entry point)."""
    return _build(0.25, num_classes, in_chans, pretrained, **kwargs)


def register() -> None:
    """Register the CNNs in timm's model registry (once per process)."""
    import timm
    from timm.models import register_model

    for fn in (garay_cnn, garay_cnn_small):
        if not timm.is_model(fn.__name__):
            register_model(fn)


register()
