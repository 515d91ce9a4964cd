"""``lagaug sample``: read images, run a saved generator on them, write PNGs and a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lagaug.core.config import parse_overrides
from lagaug.core.data.sources import read_image_file
from lagaug.core.errors import ConfigError
from lagaug.core.generators import derive_seed, load_generator, sample_images
from lagaug.core.progress import Progress
from lagaug.core.store import atomic_write_lines, save_png


def run_sample(generator_dir, images, label, variants, seed, device, overrides, out, quiet) -> int:
    gen = load_generator(generator_dir)
    c, h, w = gen.image_shape
    if label is None:
        label_index = 0
    elif label in gen.class_names:
        label_index = gen.class_names.index(label)
    else:
        raise ConfigError(f"--label {label!r} is not a class of this generator; classes: {', '.join(gen.class_names)}")
    batch = torch.stack([read_image_file(Path(p), size=h, channels=c) for p in images]).float() / 255.0
    labels = torch.full((len(images),), label_index, dtype=torch.long)
    synth = sample_images(gen, batch, labels, variants=variants, seed=seed,
                          options=parse_overrides(overrides), device=device, progress=Progress(quiet=quiet))
    out = Path(out)
    lines = []
    for j in range(len(synth)):
        src = Path(images[int(synth.source[j])])
        name = f"{src.stem}_{j:04d}.png"
        save_png(out / name, synth.images[j])
        lines.append(json.dumps({
            "file": name, "source": str(src), "method": gen.name, "seed": derive_seed(seed, "sample"),
            "label": gen.class_names[int(synth.soft[j].argmax())],
            **{k: round(float(v[j]), 6) for k, v in synth.metrics.items()},
        }))
    atomic_write_lines(out / "manifest.jsonl", lines)
    return len(synth)
