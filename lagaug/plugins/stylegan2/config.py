"""Settings of the ``stylegan2`` method (``--set key=value``) and how they map onto the trainer's
and the projector's own option objects."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lagaug.core.errors import ConfigError
from lagaug.plugins.stylegan2.directions import DIRECTIONS
from lagaug.plugins.stylegan2.training import TrainOptions

PROJECTION_OPTIONS = {  # config key -> ProjectOptions field
    "proj_steps": "steps", "proj_lr": "lr", "proj_lr_rampup": "lr_rampup",
    "proj_lr_rampdown": "lr_rampdown", "proj_noise": "noise_start", "proj_noise_ramp": "noise_ramp",
    "noise_regularize": "noise_regularize", "optimize_noise": "optimize_noise", "w_plus": "w_plus",
    "pixel_weight": "pixel_weight", "feature_weight": "feature_weight",
    "proj_patience": "patience", "proj_tol": "tol",
}


@dataclass
class StyleGAN2Config:
    """Options of the ``stylegan2`` method (``--set key=value``).

    Defaults are CPU-sized for 32x32 images (about 0.3M generator parameters); the reference
    (StyleGAN2 config F, rosinality's train.py) values are given in brackets.
    """

    # networks [style_dim 512, n_mlp 8, channels 512 up to 32 px, then 256·cm at 64, ...]
    style_dim: int = 64
    n_mlp: int = 4
    channel_base: int = 1024  # channels at resolution r: min(channel_max, channel_base // r)
    channel_max: int = 64
    channels: tuple[int, ...] = ()  # explicit channels per resolution 4, 8, ..., size (importer)
    lr_mlp: float = 0.01  # mapping network learning-rate multiplier [0.01]
    discriminator: bool = True  # false only for imported generators that came without one
    # training [batch 16, lr 0.002, r1 10, d_reg_every 16, g_reg_every 4, path_regularize 2, mixing 0.9]
    steps: int = 1000
    batch_size: int = 16
    lr: float = 0.002
    r1: float = 0.1  # R1 gamma (small images need far less than the reference's 10)
    d_reg_every: int = 16
    g_reg_every: int = 4
    path_regularize: float = 0.0  # path-length regularisation weight (0: off)
    path_batch_shrink: int = 2
    mixing: float = 0.0  # style-mixing probability
    ema_kimg: float = 2.0  # half-life of g_ema in thousands of images [10]
    ema_rampup: float = 0.05  # half-life at most this share of the images seen (0: off)
    train_share: float = 0.5  # share of each batch from the training images when a pool is given (DAPPER: 0)
    mirror: bool = False  # random horizontal flips of the real images
    checkpoint_every: int = 250  # steps between training checkpoints in the work folder (0: none)
    # statistics of W
    w_samples: int = 10000  # mapping samples for the mean w, the spread and the principal directions
    pca_components: int = 8  # principal directions kept (GANSpace)
    # projection [LPIPS distance, 1000 steps; see projection.py for the deviation]
    w_plus: bool = False
    proj_steps: int = 150
    proj_lr: float = 0.1
    proj_lr_rampup: float = 0.05
    proj_lr_rampdown: float = 0.25
    proj_noise: float = 0.05  # latent noise at the start, as a share of the spread of W
    proj_noise_ramp: float = 0.75
    noise_regularize: float = 1e5
    optimize_noise: bool = True
    pixel_weight: float = 1.0
    feature_weight: float = 1.0  # discriminator-feature distance (0: pixels only)
    proj_patience: int = 25  # stop when no image improved for this many steps (0: never)
    proj_tol: float = 1e-3  # relative improvement that counts
    proj_batch: int = 64  # images projected together
    class_proj_steps: int = 50  # projection steps for the training images in fit (0: no class directions)
    class_max_images: int = 64  # at most this many images per class are projected for the class directions
    # resampling
    direction: Literal["random", "class", "pca"] = "class"
    magnitude: float = 0.75  # move size in spreads of W along the direction
    sample_batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("style_dim", "n_mlp", "channel_base", "channel_max", "steps", "batch_size",
                     "d_reg_every", "g_reg_every", "path_batch_shrink", "pca_components",
                     "proj_steps", "proj_batch", "sample_batch_size", "class_max_images"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be at least 1")
        for name in ("r1", "path_regularize", "ema_kimg", "ema_rampup", "noise_regularize",
                     "pixel_weight", "feature_weight", "proj_noise", "proj_tol", "magnitude",
                     "checkpoint_every", "proj_patience", "class_proj_steps"):
            if not float(getattr(self, name)) >= 0:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be 0 or more")
        for name in ("lr", "lr_mlp", "proj_lr"):
            value = float(getattr(self, name))
            if not value > 0 or math.isinf(value):
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be a number > 0")
        for name in ("mixing", "train_share"):
            if not 0 <= float(getattr(self, name)) <= 1:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be in [0, 1]")
        for name in ("proj_lr_rampup", "proj_lr_rampdown", "proj_noise_ramp"):
            if not 0 < float(getattr(self, name)) <= 1:
                raise ConfigError(f"--set {name}={getattr(self, name)}: must be in (0, 1] (a share of proj_steps)")
        if self.batch_size < 2:
            raise ConfigError(f"--set batch_size={self.batch_size}: must be at least 2 (the "
                              "discriminator compares samples within a batch)")
        if self.w_samples < 10000:
            raise ConfigError(f"--set w_samples={self.w_samples}: must be at least 10000 (the mean "
                              "and spread of W need many mapping samples)")
        if any(int(c) < 1 for c in self.channels):
            raise ConfigError(f"--set channels={','.join(map(str, self.channels))}: every count must be at least 1")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"--set direction={self.direction!r}: expected one of {', '.join(DIRECTIONS)}")
        if self.pixel_weight == 0 and self.feature_weight == 0:
            raise ConfigError("--set pixel_weight=0 with feature_weight=0: the projection needs a loss; "
                              "give one of them a weight above 0")

    def train_options(self) -> TrainOptions:
        return TrainOptions(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, r1_gamma=self.r1,
            d_reg_every=self.d_reg_every, g_reg_every=self.g_reg_every,
            path_regularize=self.path_regularize, path_batch_shrink=self.path_batch_shrink,
            mixing=self.mixing, ema_kimg=self.ema_kimg, ema_rampup=self.ema_rampup,
            train_share=self.train_share, mirror=self.mirror,
        )
