"""The options of the ``vqvae2`` method (``--set key=value``), its named presets, and the checks of
the options a stage reads (temperature, region, resample_fraction).

A preset (``--set preset=NAME``) is a named set of option values applied before the user's own
``--set`` values, which win; the saved ``generator.json`` holds every resolved value (and the
preset's name), so a saved generator never depends on what a preset means in a later lagaug.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lagaug.core.errors import ConfigError

if TYPE_CHECKING:
    import torch

#: named option sets for ``--set preset=NAME`` (see the README's ``vqvae2`` row and docs/benchmarks.md)
PRESETS: dict[str, dict[str, Any]] = {
    # the default, spelt out: sized for the 32 px quick start (a few minutes on one CPU core)
    "quick": {},
    # 64 px inspection images (NEU steel surfaces): the bottom codes carry the thin cracks and pits, so
    # the decoder trains on them nearly always (bottom_dropout 0.1) and a resampled image redraws half
    # of its bottom map (resample_fraction 0.5): on neu_det_64 this kept the intended class of 68%
    # of the variants against 53% for the whole map (docs/benchmarks.md, "Generator fidelity")
    "sharp64": {"bottom_dropout": 0.1, "epochs": 15, "prior_epochs": 20, "resample_fraction": 0.5},
}


@dataclass
class VQVAE2Config:
    """Options of the ``vqvae2`` method (``--set key=value``).

    Defaults are CPU-sized for small images. The bottom map's stride follows the image size
    (``bottom_stride=auto``, :func:`auto_bottom_stride`): 32x32 images get a 32x32 bottom map
    under a 16x16 top map, 64x64 images a 32x32 map under 16x16; the reference's 1/4 map lost thin
    scratches and chips in encode -> decode, and at 32 px a 1/2 map still smoothed 1-px structure
    away (docs/benchmarks.md). The named ``PRESETS`` size the rest for other uses. The paper's /
    reference sizes are given in brackets.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS

    preset: str = ""  # a name of PRESETS (applied before the other --set values); "" = these defaults
    # VQ-VAE-2 [channel 128, n_res_block 2, n_res_channel 32, embed_dim 64, n_embed 512]
    channel: int = 32
    n_res_block: int = 2
    n_res_channel: int = 16
    embed_dim: int = 32
    n_embed: int = 256  # codebook size of each level (also the priors' number of classes)
    # the bottom map is 1/stride of the image, the top 1/(2 stride) [4: 1/4 and 1/8, the reference];
    # auto: the finest stride of 1, 2, 4 that keeps the bottom map at most 32 cells wide
    bottom_stride: int | Literal["auto"] = "auto"
    decay: float = 0.99  # EMA decay of the codebooks
    codebook_restart: float = 1.0  # move codes used < this often per batch onto fresh vectors (0: off, as the reference)
    bottom_dropout: float = 0.5  # share of training images decoded from top codes alone (0: as the reference)
    border: Literal["replicate", "zero"] = "replicate"  # conv padding; "zero" is the reference's (border artefact)
    commitment: float = 0.25
    recon_loss: Literal["l1", "mse"] = "l1"  # the paper used L1, the reference MSE
    lr: float = 3e-3  # peak [3e-4]
    batch_size: int = 32
    pretrain_epochs: int = 1  # over the unlabeled pool, when given [paper: 11 on 250k images]
    pool_images: int = 0  # pool images one pre-training pass takes (a fresh seeded draw each pass); 0 = all
    crop: int | Literal["auto"] = "auto"  # train the VQ-VAE on random crops of this side; auto: half from 32 px; 0: off
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # the VQ-VAE's learning rate over its steps
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # training arithmetic; auto: bf16 where the hardware has it
    epochs: int = 30  # on the training images (crops of them) [paper: 258]
    # bottom prior: PixelSNAIL conditioned on the top codes
    # [channel 256, kernel 5, n_block 4, n_res_block 4, res_channel 256, n_cond_res_block 3]
    prior_channel: int = 32
    prior_res_channel: int = 32
    prior_kernel: int = 3  # [5]
    prior_n_block: int = 2
    prior_n_res_block: int = 2
    prior_n_cond_res_block: int = 2
    prior_cond_res_channel: int = 0  # 0: same as prior_res_channel (the reference ties them)
    prior_cond_res_kernel: int = 3
    prior_n_out_res_block: int = 0
    prior_dropout: float = 0.1
    prior_attention: bool = False  # the reference bottom prior has none
    prior_lr: float = 5e-3  # [3e-4]
    prior_batch_size: int = 8  # small batches: more updates for the same work (lower held-out NLL sooner)
    prior_pretrain_epochs: int = 0  # over the pool's codes [paper: 3]; the pool regime wants 1 or more
    prior_epochs: int = 8  # on the training codes, one checkpoint each [paper: 112]
    prior_holdout: float = 0.15  # share of training codes held out when no validation set
    prior_checkpoint: str = "auto"  # auto (lowest held-out NLL) | last | an epoch number
    # optional top prior (attention) for unconditional sampling; trained like the bottom prior
    top_prior: bool = False
    top_prior_channel: int = 32
    top_prior_res_channel: int = 32
    top_prior_kernel: int = 5
    top_prior_n_block: int = 2
    top_prior_n_res_block: int = 2
    top_prior_n_out_res_block: int = 0
    top_prior_dropout: float = 0.1
    top_prior_attention: bool = True
    top_prior_checkpoint: str = "auto"
    # sampling and metrics
    temperature: float = 0.7  # below 1: the prior, trained in seconds, draws fewer stray rare codes (dark specks)
    region: str = ""  # a box y0,x0,y1,x1 of bottom-map cells to resample (half-open); "" = resample_fraction
    resample_fraction: float = 1.0
    # the defect (the region the lagaug_find_region stage found: a mask, an anomaly map, saliency):
    keep: Literal["region", "none"] = "region"  # region: its codes are kept, the rest resampled; none: ignored
    keep_margin: int = 2  # pixels the region grows by before the codes under it are kept
    keep_pixels: bool = True  # after decoding, the region's own pixels (feathered) replace the decoder's rendering
    transplant: Literal["none", "pool", "train"] = "none"  # put the kept codes onto a defect-free background
    seam: int = 2  # bottom-map cells around a transplanted region that the prior redraws (the seam)
    metric_sigma: float = 1.5  # Gaussian blur (pixels) that splits structure from detail
    sample_batch_size: int = 64  # images the prior samples at once (encode and decode take EVAL_BATCH)
    grid_images: int = 8  # held-out images in the fit's reconstruction grid (0: none)

    def __post_init__(self) -> None:
        if self.preset and self.preset not in PRESETS:
            raise ConfigError(f"--set preset={self.preset!r}: not a preset; presets: {', '.join(PRESETS)}")
        positive = ["channel", "n_res_channel", "embed_dim", "n_embed", "batch_size", "epochs",
                    "prior_channel", "prior_res_channel", "prior_n_block", "prior_batch_size",
                    "prior_epochs", "sample_batch_size", "top_prior_channel",
                    "top_prior_res_channel", "top_prior_n_block"]
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be at least 1")
        for name in ("n_res_block", "prior_n_res_block", "pretrain_epochs", "prior_pretrain_epochs",
                     "prior_n_cond_res_block", "grid_images",
                     "prior_n_out_res_block", "top_prior_n_res_block", "top_prior_n_out_res_block",
                     "prior_cond_res_channel"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be 0 or more")
        for name in ("prior_kernel", "top_prior_kernel", "prior_cond_res_kernel"):
            if int(getattr(self, name)) % 2 == 0:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be odd")
        if self.recon_loss not in ("l1", "mse"):
            raise ConfigError(f"--set recon_loss={self.recon_loss!r}: expected l1 or mse")
        if self.bottom_stride != "auto" and self.bottom_stride not in (1, 2, 4):
            raise ConfigError(f"--set bottom_stride={self.bottom_stride}: expected auto (by image size), "
                              "4 (bottom map 1/4 of the image, the reference), 2 (1/2: finer detail, four times "
                              "the positions) or 1 (the image's own resolution: 1-px structure, sixteen times)")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--set precision={self.precision!r}: expected auto, bf16 or fp32")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"--set lr_schedule={self.lr_schedule!r}: expected constant or cosine")
        if self.crop != "auto" and (int(self.crop) < 0 or (int(self.crop) and int(self.crop) % 8)):
            raise ConfigError(f"--set crop={self.crop}: expected auto, 0 (whole images) or a multiple of 8")
        if int(self.pool_images) < 0:
            raise ConfigError(f"--set pool_images={self.pool_images}: must be 0 (the whole pool) or more")
        if self.keep not in ("region", "none"):
            raise ConfigError(f"--set keep={self.keep!r}: expected region (keep the codes under the defect) or none")
        if self.transplant not in ("none", "pool", "train"):
            raise ConfigError(f"--set transplant={self.transplant!r}: expected none, pool (a background from the "
                              "unlabelled pool) or train (a defect-free training image)")
        for name in ("keep_margin", "seam"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be 0 or more")
        if self.border not in ("replicate", "zero"):
            raise ConfigError(f"--set border={self.border!r}: expected replicate or zero")
        if self.codebook_restart < 0:
            raise ConfigError(f"--set codebook_restart={self.codebook_restart}: must be 0 or more")
        if not 0 <= self.bottom_dropout < 1:
            raise ConfigError(f"--set bottom_dropout={self.bottom_dropout}: must be in [0, 1)")
        if not 0 < self.decay < 1:
            raise ConfigError(f"--set decay={self.decay}: must be between 0 and 1")
        if not 0 <= self.prior_holdout < 1:
            raise ConfigError(f"--set prior_holdout={self.prior_holdout}: must be in [0, 1)")
        for name, on in (("prior_channel", self.prior_attention),
                         ("top_prior_channel", self.top_prior_attention)):
            if on and getattr(self, name) % 16:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be a multiple of 16 "
                                  "with attention (8 heads over channel/2)")
        check_temperature(self.temperature, "--set temperature")
        check_fraction(self.resample_fraction, "--set resample_fraction")
        if not is_whole_map(self.region):
            parse_box(self.region)
        from lagaug.plugins.vqvae2.training import parse_checkpoint_choice

        parse_checkpoint_choice(self.prior_checkpoint, self.prior_epochs, "prior_checkpoint")
        parse_checkpoint_choice(self.top_prior_checkpoint, self.prior_epochs, "top_prior_checkpoint")


def auto_bottom_stride(height: int, width: int) -> int:
    """The stride ``bottom_stride=auto`` picks: the finest of 1, 2, 4 whose bottom map is at most 32
    cells on its longer side (32 px -> 1, 64 px -> 2, 128 px and larger -> 4, the reference's).

    At 32 px a map at 1/2 of the image smoothed the embedded set's 1-px scratches and fine streaks
    away in encode -> decode; at the image's own resolution they survive (docs/benchmarks.md). A
    map of more than 32x32 cells makes the prior and its sequential sampler slow on a CPU.
    """
    for stride in (1, 2):
        if max(height, width) <= 32 * stride:
            return stride
    return 4


def check_temperature(value: Any, option: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}={value!r}: expected a number > 0") from None
    if not t > 0 or math.isinf(t):
        raise ConfigError(f"{option}={value!r}: the temperature must be > 0 (1 samples the prior "
                          "as trained, lower stays closer to its most likely codes)")
    return t


def check_fraction(value: Any, option: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}={value!r}: expected a number in (0, 1]") from None
    if not 0 < f <= 1:
        raise ConfigError(f"{option}={value!r}: must be in (0, 1] (the share of the bottom map "
                          "to resample)")
    return f


def is_whole_map(region: Any) -> bool:
    """Whether ``region`` names no box (``None``, ``""``, ``all``, ``none``): resample_fraction decides."""
    return region is None or (isinstance(region, str) and region.strip().lower() in ("", "all", "none"))


def parse_box(region: Any) -> tuple[int, int, int, int]:
    """``"y0,x0,y1,x1"`` (or a 4-sequence) -> 4 ints; :class:`ConfigError` otherwise."""
    parts = region.replace("(", "").replace(")", "").split(",") if isinstance(region, str) else list(region)
    try:
        box = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise ConfigError(f"--set region={region!r}: expected a box y0,x0,y1,x1 in bottom-map cells "
                          "(half-open, e.g. 0,0,4,4)")
    return box


def check_region(region: Any, bottom_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box ``region`` (``"y0,x0,y1,x1"``) checked against a bottom map of ``bottom_shape``
    cells: non-empty and inside it, else a one-line :class:`ConfigError`."""
    hb, wb = bottom_shape
    box = parse_box(region)
    y0, x0, y1, x1 = box
    if not (0 <= y0 < y1 <= hb and 0 <= x0 < x1 <= wb):
        raise ConfigError(f"--set region={','.join(map(str, box))}: outside the {hb}x{wb} bottom map or empty; "
                          f"give y0,x0,y1,x1 with 0 <= y0 < y1 <= {hb} and 0 <= x0 < x1 <= {wb}")
    return box


def region_mask(region: Any, fraction: Any, shape: tuple[int, int, int], generator) -> torch.Tensor:
    """Boolean ``(N, Hb, Wb)`` map of the bottom cells to resample: the box ``region``
    (``"y0,x0,y1,x1"``, or from Python a boolean ``(Hb, Wb)`` / ``(N, Hb, Wb)`` mask), else a box of
    ``fraction`` of the map at a random place per image (drawn from ``generator``; 1 = all)."""
    import torch

    n, hb, wb = shape
    if not is_whole_map(region):
        if isinstance(region, torch.Tensor) and region.dtype == torch.bool:
            if tuple(region.shape[-2:]) != (hb, wb) or region.dim() not in (2, 3) or (
                    region.dim() == 3 and region.shape[0] not in (1, n)):
                raise ConfigError(f"--set region: a mask must be ({hb}, {wb}) or ({n}, {hb}, {wb}) "
                                  f"(the bottom map), got {tuple(region.shape)}")
            return region.cpu().expand(n, hb, wb).clone()
        y0, x0, y1, x1 = check_region(region, (hb, wb))
        mask = torch.zeros(n, hb, wb, dtype=torch.bool)
        mask[:, y0:y1, x0:x1] = True
        return mask
    f = check_fraction(fraction, "--set resample_fraction")
    mask = torch.zeros(n, hb, wb, dtype=torch.bool)
    if f >= 1:
        return mask.fill_(True)
    bh, bw = max(1, round(math.sqrt(f) * hb)), max(1, round(math.sqrt(f) * wb))
    ys = torch.randint(0, hb - bh + 1, (n,), generator=generator).tolist()
    xs = torch.randint(0, wb - bw + 1, (n,), generator=generator).tolist()
    for r, (y, x) in enumerate(zip(ys, xs)):
        mask[r, y : y + bh, x : x + bw] = True
    return mask
