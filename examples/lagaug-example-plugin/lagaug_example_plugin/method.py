"""The ``jitter`` method of the example plugin."""

from dataclasses import dataclass

import torch

from lagaug import GeneratorMethod, Latents, Synthesis


@dataclass
class JitterConfig:
    sigma: float = 0.05


class JitterMethod(GeneratorMethod):
    name = "jitter"
    description = "Gaussian pixel jitter (example third-party plugin)"
    Config = JitterConfig
    stage_options = frozenset({"sigma"})  # what `lagaug sample --set` may change on a saved generator

    def __init__(self, config, image_shape, class_names):
        super().__init__(config, image_shape, class_names)
        self.net = torch.nn.Module()  # nothing to learn; a real method keeps its networks here
        self.net.register_buffer("fitted", torch.zeros(()))

    def fit(self, train, ctx, unlabeled=None):
        self.net.fitted.fill_(1.0)
        return {"images": len(train)}

    def encode(self, images, soft, ctx):
        return Latents(codes={"x": images}, source=ctx.batch_rows(len(images)), soft=soft)

    def resample(self, latents, ctx):
        rep = latents.repeat(ctx.variants)
        sigma = float(self.option(ctx, "sigma"))
        noise = torch.randn(rep.codes["x"].shape, generator=ctx.generator) * sigma
        rep.codes["x"] = rep.codes["x"] + noise
        return rep

    def decode(self, latents, ctx):
        images = latents.codes["x"].clamp(0, 1)
        return Synthesis(images=images, soft=latents.soft, source=latents.source, weight=latents.weight)

    def modules(self):
        return {"net": self.net}
