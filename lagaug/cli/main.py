"""The ``lagaug`` click application. Heavy modules (torch) are imported inside the commands.

:func:`main` builds the plugin manager once, builds the command group with the plugins' commands,
and hands the manager to every command through click's context object (``ctx.obj``). Nothing is
built when this module is imported. The options the commands share live in
:mod:`lagaug.cli.options`.
"""

from __future__ import annotations

import sys

import click

from lagaug import __version__
from lagaug.cli.options import Terminated
from lagaug.core.errors import LagaugError


def _on_sigterm(signum, frame):
    raise Terminated()


def make_cli(plugins) -> click.Group:
    """The ``lagaug`` command group: the built-in commands plus those ``plugins`` add."""
    from lagaug.cli import commands, compare, importing, reporting

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="lagaug")
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        """lagaug: synthesize hard training images through a generator's latent space, and measure
        whether they help your classifier."""
        if ctx.invoked_subcommand != "list-plugins":  # which lists them itself
            warn_broken_plugins(plugins)

    for command in (*commands.COMMANDS, compare.compare, reporting.report, importing.import_checkpoint):
        cli.add_command(command)
    for note in plugins.notes:
        click.echo(f"warning: {note}", err=True)
    plugins.add_commands(cli, warn=lambda message: click.echo(f"warning: {message}", err=True))
    return cli


def warn_broken_plugins(plugins) -> None:
    """One warning line per plugin that failed to load (it is left out of the run)."""
    plugins.check_targets()
    for info in plugins.plugin_infos():
        if info.error:
            click.echo(f"warning: plugin {info.name!r} is broken and left out ({info.error}); "
                       "see `lagaug list-plugins`", err=True)


def main(args: list[str] | None = None, plugins=None, standalone_mode: bool = True):
    """Run the ``lagaug`` command line with ``plugins`` (default: a new plugin manager)."""
    import signal

    from lagaug.core.contract.plugins import make_plugin_manager

    if standalone_mode:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        pm = plugins if plugins is not None else make_plugin_manager()
    except LagaugError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    return make_cli(pm).main(args=args, obj=pm, prog_name="lagaug", standalone_mode=standalone_mode)
