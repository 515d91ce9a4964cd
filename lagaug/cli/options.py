"""The options and decorators the ``lagaug`` commands share: the run options (data, seeds,
device, threads), the classifier, region and executor options, ``--set``, ``--refit``; the
plugin manager handed to a command (:data:`pass_plugins`) and :func:`friendly_errors`, which turns
user errors into one line. Every command module imports from here; nothing here imports a command.
"""

from __future__ import annotations

import functools
import sys

import click

from lagaug.core.errors import LagaugError, WriteError


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers and ``timeout`` send), handled like Ctrl-C."""


def friendly_errors(func):
    """Turn user errors — ours, and the OS's about files — into one line and exit code 1;
    Ctrl-C (exit 130) and SIGTERM (exit 143) into a resume hint."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import warnings

        warnings.showwarning = _one_line_warning
        try:
            return func(*args, **kwargs)
        except WriteError as exc:
            hint = ("; finished work is saved — fix that and run again with --resume to continue"
                    if _resumable() else "")
            raise click.ClickException(f"{exc}{hint}") from None
        except LagaugError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except KeyboardInterrupt as exc:
            what = "terminated" if isinstance(exc, Terminated) else "interrupted"
            click.echo(f"{what}; finished work is saved — {_again()}", err=True)
            sys.exit(143 if isinstance(exc, Terminated) else 130)

    return wrapper


def _resumable() -> bool:
    """Whether the running command has ``--resume``."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and any(p.name == "resume" for p in ctx.command.params)


def _again() -> str:
    """How to continue the command that stopped: with ``--resume`` where it has that option."""
    return "run again with --resume to continue" if _resumable() else "run the same command again to continue"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


def set_option(func):
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help="Method config override (repeatable); unknown keys list the valid ones.")(func)


def common_run_options(func):
    options = [
        click.option("--data", default=None, metavar="SRC",
                     help="Image folder or .npz; default: the embedded inspection set."),
        click.option("--unlabeled", default=None, metavar="SRC",
                     help="Unlabelled images for generator pre-training (and compare's pseudo-label arm): a folder, "
                          "an .npz, one array of an .npz as FILE.npz:KEY (e.g. data.npz:x_pool), or 'default'. "
                          "A pool holding a test image is refused."),
        click.option("--image-size", default=32, show_default=True, type=int, help="Images are resized to SxS."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="Seed of every random choice (models, sampling): same seed, same data, same results."),
        click.option("--split-seed", default=0, show_default=True, type=int,
                     help="Seed of the validation/test split carved from the data (never moves with --seed)."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps or auto."),
        click.option("--bad-images", type=click.Choice(["warn", "error"]), default="warn", show_default=True,
                     help="Unreadable image files: skip with a warning, or stop."),
        click.option("--quiet", is_flag=True, help="No progress bars (for scripts)."),
        threads_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def preset_help(field: str) -> str:
    """``cpu: 5, paper: 20`` — a classifier setting's value in every preset, read from the presets."""
    from lagaug.core.classifier.config import PRESETS, preset_values

    return ", ".join(f"{name}: {preset_values(name)[field]}" for name in PRESETS)


def classifier_options(func):
    """The classifier-ensemble options shared by ``augment`` and ``compare`` (help from the presets)."""
    from lagaug.core.classifier.config import AUG_CHOICES, PRESETS, preset_values

    cpu, paper = preset_values("cpu"), preset_values("paper")
    options = [
        click.option("--preset", default="cpu", show_default=True, type=click.Choice(list(PRESETS)),
                     help=f"Classifier protocol: cpu = {cpu['members']} x {cpu['classifier']}, {cpu['epochs']} epochs, "
                          f"{cpu['optimizer']} lr {cpu['lr']}; paper = {paper['members']} x {paper['classifier']}, "
                          f"{paper['epochs']} epochs, {paper['optimizer']} lr {paper['lr']}."),
        click.option("--epochs", default=None, type=int, help=f"Epochs per classifier [{preset_help('epochs')}]."),
        click.option("--classifier", default=None,
                     help=f"timm model name, or garay_cnn / garay_cnn_small [{preset_help('classifier')}]."),
        click.option("--classifier-aug", default="auto", show_default=True, type=click.Choice(list(AUG_CHOICES)),
                     help="Label-preserving augmentation of the training images for the classifier: light = "
                          "small shifts; dihedral = also flips and 90-degree turns; auto = dihedral for data "
                          "that declares orientation does not matter (the embedded set), else light."),
        click.option("--classifier-set", "classifier_overrides", multiple=True, metavar="KEY=VALUE",
                     help="Other classifier settings, e.g. balance=sampler select=auc lr=0.001 (unknown keys "
                          "list the valid ones)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def region_options(func):
    """Where the class evidence of an image lies (its defect), and which classes have none."""
    options = [
        click.option("--region-source", default="auto", show_default=True,
                     type=click.Choice(["auto", "mask", "anomaly", "saliency", "none"]),
                     help="How the region a method keeps (the defect) is found: mask = the masks given with the "
                          "data; anomaly = where a model of defect-free images fails to rebuild the image; "
                          "saliency = where hiding the image hurts its class in the ensemble; none = keep "
                          "nothing; auto = the mask, else (with an --unlabeled pool) the anomaly map."),
        click.option("--normal-class", multiple=True, metavar="NAME",
                     help="A defect-free class (repeatable; 'none' for no class): its images have no region "
                          "and may not have masks [the data's own, else classes named ok/good/normal]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def refit_option(func):
    return click.option("--refit", is_flag=True,
                        help="Fit the generator and train the baseline ensemble again instead of reusing the "
                             "cached ones of an earlier run on the same data and settings ($LAGAUG_CACHE; off "
                             "turns the cache off).")(func)


def threads_option(func):
    return click.option("--threads", default=None, type=int,
                        help="torch threads [the cores this process may use]; results are bit-identical only "
                             "for the same count.")(func)


def executor_options(func):
    """Where ``augment``'s members and ``compare``'s cells train (shared by both commands)."""
    options = [
        click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]),
                     help="local: in this process; ray: each ensemble member (augment) or cell (compare) is one "
                          'Ray task (needs pip install "lagaug[ray]"). Same seed, same results either way.'),
        click.option("--ray-address", default=None, metavar="ADDR",
                     help="With --executor ray: auto, HOST:PORT or ray://HOST:PORT joins a running cluster "
                          "[none: start Ray on this machine]."),
        click.option("--ray-gpus", default=None, type=float, metavar="SHARE",
                     help="With --executor ray and a CUDA --device: the GPU share each task asks for, e.g. 0.25 "
                          "[1]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def use_threads(threads: int | None) -> int:
    """Set torch's thread count before any work (``None``: the cores this process may use)."""
    from lagaug.core.threads import apply_threads, check_threads, default_threads

    n = default_threads() if threads is None else check_threads(threads)
    apply_threads(n)
    return n


pass_plugins = click.pass_obj
"""Decorator: the command receives the plugin manager :func:`main` built as its first argument."""
