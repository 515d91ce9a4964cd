"""One network per class: the bookkeeping ``vae`` and ``vae-overlay`` share. ``vaes[i]`` is the
network of ``class_names[i]``; ``fitted[i]`` says whether it was trained (saved with the weights,
so a loaded generator knows); ``fit_metrics`` are the fit's per-class figures, saved too. The
checks every stage makes — images of the generator's shape, soft labels with one column per class,
a fitted network for every class asked for — are worded with the method's name."""

from __future__ import annotations

from typing import Any, Iterator

import torch

from lagaug.core.contract.method import GeneratorMethod
from lagaug.core.errors import ConfigError


class PerClassNetworks(GeneratorMethod):
    """A method whose generator is one network per class. Subclasses build one in :meth:`new_network`."""

    def __init__(self, config: Any, image_shape: tuple[int, int, int], class_names: list[str]):
        super().__init__(config, image_shape, class_names)
        self.vaes = [self.new_network(config, torch.Generator().manual_seed(0)) for _ in self.class_names]
        self.fitted = [False] * self.num_classes
        self.fit_metrics: dict[str, Any] = {}

    def new_network(self, config: Any, generator: torch.Generator) -> torch.nn.Module:
        """A fresh network for one class, initialised from ``generator``."""
        raise NotImplementedError

    # -- persistence ---------------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {f"class_{i}": vae for i, vae in enumerate(self.vaes)}

    def extra_state(self) -> dict[str, Any]:
        return {"fitted": list(self.fitted), "fit": self.fit_metrics}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.fitted = [bool(v) for v in state.get("fitted", [True] * self.num_classes)]
        self.fit_metrics = dict(state.get("fit", {}))

    # -- checks --------------------------------------------------------------------------------
    def class_network(self, c: int, device) -> torch.nn.Module:
        """Class ``c``'s network on ``device``, in eval mode (refused when it was never fitted)."""
        self.require_fitted([c])
        return self.vaes[c].to(device).eval()

    def require_fitted(self, classes: list[int] | None = None) -> None:
        """Every class in ``classes`` (default: all) has a fitted network."""
        wanted = range(self.num_classes) if classes is None else classes
        missing = [self.class_names[c] for c in wanted if not self.fitted[c]]
        if missing:
            raise ConfigError(f"{self.name}: no fitted VAE for class {', '.join(map(repr, missing))}; "
                              "fit the generator first")

    def check_images(self, images: torch.Tensor, what: str) -> None:
        """``images`` are a batch of this generator's shape."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ConfigError(
                f"{self.name}: {what} have shape {'x'.join(map(str, images.shape[1:]))}, but this generator "
                f"is for {'x'.join(map(str, self.image_shape))} (channels x height x width)"
            )

    def classes_of(self, soft: torch.Tensor, n: int) -> torch.Tensor:
        """The class of each of ``n`` rows from their soft labels (on the CPU)."""
        if tuple(soft.shape) != (n, self.num_classes):
            raise ConfigError(f"{self.name}: soft labels must have shape ({n}, {self.num_classes}), "
                              f"got {tuple(soft.shape)}")
        return soft.argmax(dim=1).cpu()

    @staticmethod
    def class_groups(classes: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
        """``(class, rows)`` for each class present in ``classes``."""
        for c in torch.unique(classes).tolist():
            yield int(c), torch.nonzero(classes == c).flatten()
