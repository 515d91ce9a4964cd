"""The anomaly map: where a small autoencoder of defect-free images fails to rebuild an image.

:class:`AnomalyModel` learns the normal (defect-free) training images and the unlabelled pool
(mostly defect-free, as in the papers' regime) through a narrow bottleneck, so a defect — which it
never learnt — comes back smoothed away. The map is the per-pixel absolute error, Gaussian
smoothed; the region is where it passes the threshold learnt on held-out normal images (a high
quantile of their pixel errors) and at least half of the image's own peak, so every image with a
defect gets its strongest spot and a clean image mostly nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lagaug.core.regions.masks import gaussian_blur

ANOMALY_JSON = "anomaly.json"
ANOMALY_WEIGHTS = "anomaly.safetensors"


@dataclass
class AnomalyConfig:
    """How the anomaly model is built and fitted."""

    channels: int = 16  # feature channels of the first layer (twice that deeper)
    bottleneck: int = 4  # channels at 1/4 of the image size: narrow, so defects do not pass
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    sigma: float = 1.0  # smoothing of the error map, pixels
    quantile: float = 0.995  # of held-out normal pixels' errors: the threshold
    relative: float = 0.5  # a region pixel also reaches this share of its image's peak error


class _AutoEncoder(nn.Module):
    def __init__(self, c: int, ch: int, bottleneck: int):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(c, ch, 3, padding=1, padding_mode="replicate"), nn.ELU(),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.ELU(),
            nn.Conv2d(2 * ch, 2 * ch, 4, stride=2, padding=1), nn.ELU(),
            nn.Conv2d(2 * ch, bottleneck, 1))
        self.dec = nn.Sequential(
            nn.Conv2d(bottleneck, 2 * ch, 1), nn.ELU(),
            nn.ConvTranspose2d(2 * ch, 2 * ch, 4, stride=2, padding=1), nn.ELU(),
            nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1), nn.ELU(),
            nn.Conv2d(ch, c, 3, padding=1, padding_mode="replicate"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(self.enc(x)))


class AnomalyModel:
    """Fit on normal images (and a pool); :meth:`score` maps, :meth:`region` thresholds."""

    def __init__(self, image_shape: tuple[int, int, int], config: AnomalyConfig | None = None):
        self.config = config or AnomalyConfig()
        self.image_shape = tuple(int(v) for v in image_shape)
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"the anomaly model needs image sides divisible by 4, got {h}x{w}")
        self.net = _AutoEncoder(c, self.config.channels, self.config.bottleneck)
        self.threshold = float("inf")
        self.report: dict[str, Any] = {}

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, normal: torch.Tensor, pool=None, held_out: torch.Tensor | None = None, *,
            generator: torch.Generator, device: torch.device | str = "cpu", progress=None) -> dict[str, Any]:
        """Train on ``normal`` (float ``(N, C, H, W)`` in [0, 1]) and the pool's batches; set the
        threshold from ``held_out`` normal images (else the last sixth of ``normal``)."""
        from lagaug.core.progress import Progress

        cfg, dev = self.config, torch.device(device)
        if held_out is None or len(held_out) == 0:
            cut = max(1, len(normal) // 6) if len(normal) > 1 else 0
            held_out, normal = normal[len(normal) - cut:], normal[: len(normal) - cut]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            self.net = _AutoEncoder(self.image_shape[0], cfg.channels, cfg.bottleneck)
        self.net.to(dev).train()
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        batches = self._batches(normal, pool, generator)
        losses = []
        with (progress or Progress(quiet=True)).task("regions: anomaly model", total=cfg.steps) as task:
            for step in range(cfg.steps):
                x = next(batches).to(dev)
                loss = F.l1_loss(self.net(x), x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                task.advance(1, status=f"loss {losses[-1]:.4f}")
        self.net.eval()
        errors = self.score(held_out, device=dev)
        flat = errors.flatten()
        k = max(1, int(round(cfg.quantile * (flat.numel() - 1))))
        self.threshold = float(flat.kthvalue(min(k + 1, flat.numel())).values) if flat.numel() else float("inf")
        self.report = {"images": len(normal), "pool": 0 if pool is None else len(pool), "held_out": len(held_out),
                       "first_loss": round(losses[0], 6) if losses else None,
                       "last_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 6) if losses else None,
                       "threshold": round(self.threshold, 6)}
        return self.report

    def _batches(self, normal: torch.Tensor, pool, generator: torch.Generator):
        """Endless batches: pool batches (when there is a pool) with normal images mixed in."""
        bs = self.config.batch_size
        while True:
            if pool is not None and len(pool):
                for x in pool.iter_batches(bs, generator):
                    if len(normal):
                        pick = torch.randint(0, len(normal), (max(1, bs // 4),), generator=generator)
                        x = torch.cat([x, normal[pick]])
                    yield x
            else:
                order = torch.randperm(len(normal), generator=generator)
                for s in range(0, len(order), bs):
                    yield normal[order[s : s + bs]]

    # -- maps ----------------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, images: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 256) -> torch.Tensor:
        """The smoothed per-pixel reconstruction error ``(N, H, W)`` (CPU)."""
        self.net.to(device).eval()
        out = []
        for s in range(0, len(images), batch_size):
            x = images[s : s + batch_size].to(device)
            err = (self.net(x) - x).abs().mean(1, keepdim=True)
            out.append(gaussian_blur(err, self.config.sigma)[:, 0].cpu())
        return torch.cat(out) if out else torch.zeros(0, *self.image_shape[1:])

    def region(self, images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """Bool ``(N, H, W)``: pixels above the threshold and at least ``relative`` of the image's peak."""
        errors = self.score(images, device)
        peak = errors.flatten(1).max(1).values.view(-1, 1, 1) if len(errors) else errors
        return (errors > self.threshold) & (errors >= self.config.relative * peak)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        from lagaug.core.store.atomic import atomic_save_safetensors, atomic_write_json

        directory = Path(directory)
        atomic_save_safetensors(directory / ANOMALY_WEIGHTS, self.net.state_dict())
        atomic_write_json(directory / ANOMALY_JSON, {"config": asdict(self.config), "image_shape": list(self.image_shape),
                                                     "threshold": self.threshold, "report": self.report})

    @classmethod
    def load(cls, directory: str | Path) -> "AnomalyModel":
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / ANOMALY_JSON).read_text())
        model = cls(tuple(meta["image_shape"]), AnomalyConfig(**meta["config"]))
        model.net.load_state_dict(load_file(str(directory / ANOMALY_WEIGHTS)))
        model.net.eval()
        model.threshold, model.report = float(meta["threshold"]), dict(meta.get("report", {}))
        return model

    @staticmethod
    def exists(directory: str | Path) -> bool:
        return (Path(directory) / ANOMALY_JSON).exists() and (Path(directory) / ANOMALY_WEIGHTS).exists()


def fit_anomaly_model(splits, normal: list[int], *, generator: torch.Generator, device="cpu", progress=None,
                      out: str | Path | None = None, config: AnomalyConfig | None = None) -> "AnomalyModel | None":
    """The run's anomaly model: loaded from ``out`` when saved there, else fitted on the real
    normal-class training images and the unlabelled pool (thresholded on the normal validation
    images) and saved to ``out``. ``None`` when there is nothing defect-free to learn from."""
    if out is not None and AnomalyModel.exists(out):
        return AnomalyModel.load(out)
    train, pool = splits.train, splits.unlabeled
    pick = torch.isin(train.labels, torch.tensor(normal, dtype=torch.long)) & ~train.synthetic
    images = train.float_images(torch.nonzero(pick).flatten())
    if not len(images) and (pool is None or not len(pool)):
        return None
    val = splits.val
    held = None
    if val is not None and len(val):
        held_rows = torch.nonzero(torch.isin(val.labels, torch.tensor(normal, dtype=torch.long))).flatten()
        held = val.float_images(held_rows) if len(held_rows) else None
    if held is None and not len(images):  # only a pool: hold out one batch of it
        held = next(pool.iter_batches(64, generator))
    model = AnomalyModel((train.channels, *train.image_size), config)
    model.fit(images, pool, held, generator=generator, device=device, progress=progress)
    if out is not None:
        model.save(out)
    return model
