"""The classifiers: timm models with random weights, and checks that fail early with one line."""

from __future__ import annotations

import difflib

import torch

from lagaug.core.errors import ConfigError


def check_classifier_name(name: str) -> None:
    """Raise ConfigError for a model name timm does not know (with close matches)."""
    import timm

    import lagaug.core.classifier.cnn  # noqa: F401  (registers lagaug's own small CNNs in timm)

    if name in timm.list_models():
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}" if close else "; see timm.list_models() for names"
    raise ConfigError(f"--classifier {name!r} is not a timm model{hint}")


def build_classifier(name: str, num_classes: int, in_chans: int) -> torch.nn.Module:
    """A timm model with random weights (no download), sized for our classes and channels."""
    import timm

    check_classifier_name(name)
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)


def check_classifier_input(name: str, channels: int, size: tuple[int, int], num_classes: int) -> None:
    """Raise ConfigError when the classifier cannot take images of this size (one dry forward)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model = build_classifier(name, num_classes, channels).eval()
        try:
            model(torch.zeros(1, channels, *size))
        except RuntimeError as exc:
            raise ConfigError(
                f"--classifier {name!r} cannot take {size[0]}x{size[1]} images ({str(exc).splitlines()[0][:80]}); "
                "raise --image-size or choose another --classifier"
            ) from None
