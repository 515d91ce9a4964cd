"""``lagaug sample``: read images, run a saved generator on them, write PNGs and a manifest."""

from __future__ import annotations

from pathlib import Path

import torch

from lagaug.core.config import parse_overrides
from lagaug.core.data.dataset import ImageSet
from lagaug.core.data.sources import read_image_file
from lagaug.core.errors import ConfigError
from lagaug.core.progress import Progress
from lagaug.core.run.generators import load_generator, sample_images
from lagaug.core.runtime import derive_seed
from lagaug.core.store.synthetic import write_synthetic


def image_labels(paths: list[str], label: str | None, class_names: list[str]) -> tuple[list[int], str]:
    """The class of every image and where it came from: ``--label``, else each image's parent
    folder name when that is a class; one class alone needs neither."""
    if label is not None:
        if label not in class_names:
            raise ConfigError(f"--label {label!r} is not a class of this generator; classes: {', '.join(class_names)}")
        return [class_names.index(label)] * len(paths), f"--label {label}"
    if len(class_names) == 1:
        return [0] * len(paths), f"the generator's only class {class_names[0]!r}"
    parents = [Path(p).resolve().parent.name for p in paths]
    unknown = [p for p, parent in zip(paths, parents) if parent not in class_names]
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: give --label (one of: {', '.join(class_names)}); the image's folder "
            f"{Path(unknown[0]).resolve().parent.name!r} is not a class name"
        )
    return [class_names.index(p) for p in parents], "each image's folder name"


def run_sample(plugins, generator_dir, images, label, variants, seed, device, overrides, out, quiet) -> int:
    from lagaug.core.store.atomic import check_output_dir

    check_output_dir(out)
    gen = load_generator(generator_dir, plugins=plugins)
    c, h, w = gen.image_shape
    labels, how = image_labels(list(images), label, gen.class_names)
    batch = torch.stack([read_image_file(Path(p), size=h, channels=c) for p in images])
    pool = ImageSet(images=batch, labels=torch.tensor(labels), class_names=gen.class_names,
                    ids=[str(p) for p in images])
    progress = Progress(quiet=quiet)
    progress.log(f"labels from {how}")
    synth = sample_images(gen, pool.float_images(), pool.labels, variants=variants, seed=seed,
                          options=parse_overrides(overrides), device=device, progress=progress,
                          pool=pool, plugins=plugins)
    stems = [Path(p).stem for p in images]
    write_synthetic(Path(out), "", synth, pool, method=gen.name, seed=derive_seed(seed, "sample"),
                    id_prefix="sample", file_name=lambda j: f"{stems[int(synth.primary[j])]}_{j:04d}.png")
    return len(synth)
