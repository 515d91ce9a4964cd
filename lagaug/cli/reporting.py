"""``lagaug report RUN``: write RUN/report.html, the page a person reads. No torch is imported.

:func:`write_after_run` is what ``augment`` and ``compare`` call when they finish (unless
``--no-report``): a report that cannot be written is a warning, never a failed run."""

from __future__ import annotations

import click

from lagaug.cli.options import friendly_errors, pass_plugins

report_option = click.option("--report/--no-report", "report", default=True, show_default=True,
                             help="Write RUN/report.html (the run's page) when the run finishes.")


@click.command()
@click.argument("run", metavar="RUN", type=click.Path(file_okay=True, dir_okay=True))
@pass_plugins
@friendly_errors
def report(plugins, run: str) -> None:
    """Write RUN/report.html: the results, plots, images and data of an augment or compare run
    (one self-contained page; open it in a browser)."""
    from lagaug.report import write_report

    click.echo(f"wrote {write_report(run, plugins)}")


def write_after_run(run_dir, plugins, enabled: bool = True) -> None:
    """Write the finished run's report; a failure is one warning line naming the retry."""
    if not enabled:
        return
    try:
        from lagaug.report import write_report

        path = write_report(run_dir, plugins)
    except Exception as exc:  # the run itself succeeded; its record is complete without the page
        click.echo(f"warning: report not written ({type(exc).__name__}: {exc}); "
                   f"run `lagaug report {run_dir}`", err=True)
        return
    click.echo(f"report: {path}")
