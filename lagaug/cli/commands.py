"""The built-in commands: list-plugins, augment, fit, sample."""

from __future__ import annotations

from pathlib import Path

import click

from lagaug.cli.options import (
    classifier_options,
    common_run_options,
    executor_options,
    friendly_errors,
    pass_plugins,
    preset_help,
    refit_option,
    region_options,
    set_option,
    threads_option,
    use_threads,
)
from lagaug.cli.reporting import report_option, write_after_run


@click.command("list-plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True,
              help="Also import every method class (slower: imports torch); exit 1 when any plugin is broken.")
@pass_plugins
@friendly_errors
def list_plugins(plugins, as_json: bool, check: bool) -> None:
    """Show every plugin: distribution, version, hooks, methods, and load errors."""
    from lagaug.cli import render
    from lagaug.core.errors import PluginError

    plugins.check_targets(import_classes=check)
    infos = plugins.plugin_infos()
    render.plugins_json(infos) if as_json else render.plugins_table(infos)
    broken = [i.name for i in infos if i.error]
    if check and broken:  # a gate for CI: the listing above says what failed
        raise PluginError(f"{len(broken)} plugin(s) failed the check: {', '.join(broken)}")


@click.command()
@click.option("--method", required=True, help="Generator method (see `lagaug list-plugins`).")
@click.option("--hard-k", default=2, show_default=True, type=int, help="Hard images augmented per iteration.")
@click.option("--iterations", default=2, show_default=True, type=int, help="Augmentation rounds after the baseline.")
@click.option("--variants", default=1, show_default=True, type=int, help="New images per hard image.")
@common_run_options
@click.option("--classes", multiple=True, metavar="NAME", help="Only augment these classes (repeatable).")
@click.option("--include-synthetic", is_flag=True, help="Allow synthetic images to be chosen as hard.")
@click.option("--quality-gate", is_flag=True,
              help="Drop synthetic images whose intended class does not win under the iteration's ensemble, "
                   "and near-duplicates of their source (they are still written, marked dropped).")
@click.option("--gate-distance", default=None, type=float,
              help="With --quality-gate: its near-duplicate threshold, the mean absolute pixel difference to the "
                   "source (0..1) [0.01].")
@region_options
@click.option("--ensemble", default=None, type=int, help=f"Classifiers per ensemble [{preset_help('members')}].")
@classifier_options
@executor_options
@click.option("--generator", default=None, metavar="DIR", help="Use this saved generator instead of fitting one.")
@set_option
@click.option("--out", default=None, metavar="DIR", help="Run directory [lagaug-runs/METHOD-TIME].")
@click.option("--resume", is_flag=True, help="Continue the run in --out; finished work is not redone.")
@refit_option
@report_option
@pass_plugins
@friendly_errors
def augment(plugins, method, hard_k, iterations, variants, data, unlabeled, image_size, seed, split_seed, device,
            bad_images, quiet, classes, include_synthetic, quality_gate, gate_distance, region_source, normal_class,
            ensemble, preset, epochs,
            classifier, classifier_aug, classifier_overrides, threads, executor, ray_address, ray_gpus, generator,
            overrides, out, resume, refit, report) -> None:
    """Run the iterative hard-sample loop and report the metric per iteration."""
    import time

    from lagaug.cli import render
    from lagaug.core.config import parse_overrides
    from lagaug.core.defaults.quality import MIN_DISTANCE
    from lagaug.core.errors import ConfigError
    from lagaug.core.progress import Progress
    from lagaug.core.run.loop import AugmentConfig, run_augment

    if gate_distance is not None and not quality_gate:
        raise ConfigError(f"--gate-distance {gate_distance:g}: sets the quality gate's threshold, but the gate is "
                          "off; add --quality-gate or drop --gate-distance")
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out DIR: the run directory to continue")
        out = str(Path("lagaug-runs") / f"{method}-{time.strftime('%Y%m%d-%H%M%S')}")
    config = AugmentConfig(
        method=method, hard_k=hard_k, iterations=iterations, variants=variants, data=data,
        unlabeled=unlabeled, classes=list(classes) or None, include_synthetic=include_synthetic,
        image_size=image_size, seed=seed, split_seed=split_seed, preset=preset, ensemble=ensemble, epochs=epochs,
        classifier=classifier, classifier_aug=classifier_aug, classifier_set=parse_overrides(classifier_overrides),
        threads=use_threads(threads), generator=generator, set=parse_overrides(overrides), device=device,
        out=out, bad_images=bad_images, quality_gate=quality_gate,
        gate_distance=MIN_DISTANCE if gate_distance is None else gate_distance,
        executor=executor, ray_address=ray_address, ray_gpus=ray_gpus, region_source=region_source,
        normal_classes=list(normal_class) or None, refit=refit,
    )
    progress = Progress(quiet=quiet, console=render.console(stderr=True))
    result = run_augment(config, progress, resume=resume, plugins=plugins)
    render.summary_table(result.rows, result.run_dir)
    write_after_run(result.run_dir, plugins, report)


@click.command()
@click.option("--method", required=True, help="Generator method (see `lagaug list-plugins`).")
@common_run_options
@set_option
@click.option("--out", required=True, metavar="DIR", help="Where to save the generator (JSON + safetensors).")
@pass_plugins
@friendly_errors
def fit(plugins, method, data, unlabeled, image_size, seed, split_seed, device, bad_images, quiet, threads, overrides,
        out) -> None:
    """Train a generator alone and save it."""
    from lagaug.cli import render
    from lagaug.core.config import parse_overrides
    from lagaug.core.data.sources import load_data
    from lagaug.core.progress import Progress
    from lagaug.core.run.generators import check_generator_out, fit_generator

    check_generator_out(out)
    progress = Progress(quiet=quiet, console=render.console(stderr=True))
    plugins.get_method(method)  # an unknown method fails before the data is read
    plugins.plugin_options(parse_overrides(overrides))  # so does a misspelt --set PLUGIN.key
    use_threads(threads)
    splits = load_data(data, image_size=image_size, seed=split_seed, unlabeled=unlabeled,
                       bad_images=bad_images, progress=progress)
    gen = fit_generator(method, splits, overrides=parse_overrides(overrides), seed=seed, device=device,
                        progress=progress, out=out, plugins=plugins)
    click.echo(f"saved {gen.name} generator to {out}")


@click.command()
@click.option("--generator", "generator_dir", required=True, metavar="DIR", help="A saved generator.")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--label", default=None,
              help="Class name of the images [each image's parent folder name, when that is a class].")
@click.option("--variants", default=4, show_default=True, type=int, help="New images per input image.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True)
@set_option
@click.option("--out", required=True, metavar="DIR", help="Folder for the PNGs and manifest.jsonl.")
@click.option("--quiet", is_flag=True)
@threads_option
@pass_plugins
@friendly_errors
def sample(plugins, generator_dir, images, label, variants, seed, device, overrides, out, quiet, threads) -> None:
    """encode -> resample -> decode IMAGES with a saved generator; write PNGs."""
    from lagaug.cli.sampling import run_sample

    use_threads(threads)
    n = run_sample(plugins, generator_dir, images, label, variants, seed, device, overrides, out, quiet)
    click.echo(f"wrote {n} images to {out}")


COMMANDS = (list_plugins, augment, fit, sample)
