"""The ``lagaug`` click application. Heavy modules (torch) are imported inside the commands."""

from __future__ import annotations

import functools
import sys

import click

from lagaug import __version__
from lagaug.core.errors import LagaugError


def friendly_errors(func):
    """Turn user errors into one line and exit code 1; Ctrl-C into a resume hint."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import warnings

        warnings.showwarning = _one_line_warning
        try:
            return func(*args, **kwargs)
        except LagaugError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; finished work is saved — run again with --resume to continue", err=True)
            sys.exit(130)

    return wrapper


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
                     help="Unlabelled images for generator pre-training (folder, .npz or 'default')."),
        click.option("--image-size", default=32, show_default=True, type=int, help="Images are resized to SxS."),
        click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same data: same results."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps or auto."),
        click.option("--bad-images", type=click.Choice(["warn", "error"]), default="warn", show_default=True,
                     help="Unreadable image files: skip with a warning, or stop."),
        click.option("--quiet", is_flag=True, help="No progress bars (for scripts)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lagaug")
def cli() -> None:
    """lagaug: synthesize hard training images through a generator's latent space, and measure
    whether they help your classifier."""


from lagaug.cli import commands, compare  # noqa: E402,F401  (registers the built-in commands)


def _add_plugin_commands() -> None:
    from lagaug.core.plugins import get_plugin_manager

    try:
        pm = get_plugin_manager()
        for impl in pm.hook.lagaug_register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:  # a broken plugin never takes the CLI down
                click.echo(f"warning: plugin {impl.plugin_name!r} failed to add commands: {exc}", err=True)
    except LagaugError as exc:
        click.echo(f"warning: {exc}", err=True)


_add_plugin_commands()


def main() -> None:
    cli()
