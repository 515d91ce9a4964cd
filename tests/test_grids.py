"""The PNG grids of a run: one row per source image, then what was made from it — with a mix's or
an overlay's partners drawn before the image made from them."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from lagaug.core.data.dataset import ImageSet
from lagaug.core.plots import partner_images, save_pair_grid

W = 4  # cell size; pad 2, scale 1 below


def flat(value: float) -> torch.Tensor:
    return torch.full((1, W, W), value)


def cells(path, row: int = 0) -> list[float]:
    """The value of each cell of ``row``, left to right (cells are the runs of non-white pixels)."""
    line = np.asarray(Image.open(path), dtype=np.int64)[row * (W + 2) + W // 2]
    out, x = [], 0
    while x < len(line):
        if line[x] < 255:
            end = x
            while end < len(line) and line[end] < 255:
                end += 1
            assert end - x == W, f"a cell {end - x} pixels wide at x={x}"
            out.append(round(float(line[x:end].mean()) / 255, 2))
            x = end
        else:
            x += 1
    return out


def test_plain_grid_is_source_then_its_images(tmp_path):
    sources = torch.stack([flat(0.1), flat(0.2)])
    synth = torch.stack([flat(0.3), flat(0.4), flat(0.5)])
    path = save_pair_grid(tmp_path / "g.png", sources, synth, torch.tensor([0, 1, 0]), scale=1)
    assert cells(path, 0) == [0.1, 0.3, 0.5]
    assert cells(path, 1) == [0.2, 0.4]


def test_partners_are_drawn_before_the_image_made_from_them(tmp_path):
    pool = ImageSet(images=(torch.tensor([0.1, 0.6, 0.7, 0.8]).view(4, 1, 1, 1).expand(4, 1, W, W) * 255)
                    .round().to(torch.uint8), labels=torch.tensor([0, 1, 1, 1]), class_names=["a", "b"], ids=list("pqrs"))
    source = torch.tensor([[0, 1], [0, 2], [0, -1]])  # two mixes with partners 1 and 2, one plain variant
    partners = partner_images(pool, source)
    assert [len(p) for p in partners] == [1, 1, 0]
    synth = torch.stack([flat(0.3), flat(0.4), flat(0.5)])
    path = save_pair_grid(tmp_path / "g.png", pool.float_images([0]), synth, torch.tensor([0, 0, 0]), scale=1,
                          partners=partners)
    assert cells(path) == [0.1, 0.6, 0.3, 0.7, 0.4, 0.5]
    gaps = np.asarray(Image.open(path))[W // 2]
    assert gaps.shape[0] == 6 * (W + 2) + 3 * 6  # three groups after the source, each set apart by a wider gap
