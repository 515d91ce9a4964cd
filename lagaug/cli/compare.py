"""``lagaug compare``: classifiers trained side by side on real, classic, synthetic, both, and
duplicated training sets, with intervals and paired significance tests. Nothing here imports torch
until the command runs."""

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
    use_threads,
)
from lagaug.cli.reporting import report_option, write_after_run


def results_table(result) -> None:
    """Print the per-arm table and the primary comparisons with rich."""
    from rich.table import Table

    from lagaug.cli.render import console
    from lagaug.core.compare import METRIC_NAMES, REAL, p_text, pct
    from lagaug.core.compare.results import signed_pct

    cfg, rows = result.config, result.rows
    n = max((r["repeats"] for r in rows), default=0)
    table = Table(title=f"lagaug compare — {cfg.method or ', '.join(r['arm'] for r in rows)} — {result.run_dir}")
    for col in ("arm", "train images", "added", "macro-F1 %", "accuracy %", "AUC %", "Δ F1 vs real",
                "p vs real (Holm)"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for r in rows:
        base = r["arm"] == REAL
        delta = "—" if base else f"{100 * r['f1_delta_vs_real']:+.2f}"
        style = "green" if r.get("f1_significant_vs_real") and r["f1_delta_vs_real"] > 0 else (
            "red" if r.get("f1_significant_vs_real") else None)
        table.add_row(r["arm"], f"{r['train_size']:.0f}", f"{r['added']:.0f}", pct(r["f1_mean"], r["f1_ci"]),
                      pct(r["accuracy_mean"], r["accuracy_ci"]), pct(r["auc_mean"], r["auc_ci"]),
                      delta, "—" if base else p_text(r["f1_p_vs_real"], cfg.alpha), style=style)
    out = console()
    out.print(table)
    for c in result.comparisons:
        if c["family"] == "primary":
            verdict = "significant" if c["significant"] else "not significant"
            out.print(f"{c['arm']} vs {c['baseline']}: {METRIC_NAMES[c['metric']]} "
                      f"{signed_pct(c['delta'], c['delta_ci'])} points, p = {c['p']:.3g}, "
                      f"Holm-corrected {c['p_holm']:.3g} ({verdict})")
    test = next((c["test"] for c in result.comparisons), "paired")
    min_p = min((c["min_p"] for c in result.comparisons), default=1.0)
    out.print(f"mean ± 95% CI over {n} repeats; p: paired {test} test, Holm-corrected; * = corrected p < "
              f"{cfg.alpha} (smallest p these repeats allow: {min_p:.3g})")
    root = result.run_dir
    out.print(f"table: {root}/results.md · csv: {root}/results.csv · plot: {root}/results.png · "
              f"per repeat: {root}/cells.jsonl")


@click.command()
@click.option("--method", default=None,
              help="Generator method of the METHOD arms (see `lagaug list-plugins`); --set applies to it. "
                   "Optional when --arms names the methods.")
@click.option("--arms", default=None, metavar="A,B,...",
              help="Arms to run: real, classic, duplicate, pseudo-label, and for NAME a method or an --arm label: "
                   "NAME, classic+NAME, NAME+gate (the images the quality gate keeps); 'method' stands for "
                   "--method [real, classic, METHOD, classic+METHOD, duplicate, and every --arm label].")
@click.option("--arm", "variants", multiple=True, metavar="LABEL=METHOD:key=value,...",
              help="A named variant of a method, usable as an arm: its own method options and, with "
                   "classes=A,B, synthesize only from images of those classes (e.g. vq-ok=vqvae2:classes=ok); "
                   "repeatable. Arms of one method with the same fit-time options share one fit per repeat.")
@click.option("--pseudo-threshold", default=0.9, show_default=True, type=float,
              help="pseudo-label arm: pool images whose ensemble confidence is at least this join training.")
@click.option("--pseudo-cap", default=None, type=int,
              help="pseudo-label arm: at most this many pool images per class, the most confident "
                   "[synthetic-per-image x real training images / classes].")
@click.option("--pseudo-rounds", default=1, show_default=True, type=click.IntRange(1, 2),
              help="pseudo-label arm: 2 = retrain on real + round-1 pseudo-labels and label the pool again.")
@click.option("--repeats", default=3, show_default=True, type=int, help="Repeats (own seeds, own subset with --train-size).")
@click.option("--train-size", default=None, type=int,
              help="Draw this many training images per repeat (class-balanced) [the whole training split].")
@click.option("--proportional", is_flag=True, help="Draw --train-size proportionally to the classes, not balanced.")
@click.option("--val-fraction", default=0.15, show_default=True, type=float,
              help="Share of each class's training images kept for validation (never the test set).")
@click.option("--test-size", default=None, type=int, help="Evaluate on a fixed class-balanced test subset of this size.")
@click.option("--synthetic-per-image", default=1.0, show_default=True, type=float,
              help="Synthetic images per real training image in the METHOD arms (fractions allowed).")
@click.option("--classic-set", "classic_overrides", multiple=True, metavar="KEY=VALUE",
              help="Classical augmentation: rotation=20 shift_x=0.2 shift_y=0.2 zoom=0 hflip=false fill=border.")
@common_run_options
@classifier_options
@executor_options
@click.option("--members", default=None, type=int,
              help=f"Classifiers per arm and repeat (their mean is the cell) [{preset_help('members')}].")
@click.option("--batch-size", default=None, type=int, help=f"Classifier batch size [{preset_help('batch_size')}].")
@click.option("--lr", default=None, type=float, help=f"Classifier learning rate [{preset_help('lr')}].")
@click.option("--budget", default="epochs", show_default=True, type=click.Choice(["epochs", "steps"]),
              help="epochs: every arm trains --epochs passes over its own set; steps: every arm gets the "
                   "optimisation steps of --epochs passes over the largest arm.")
@set_option
@click.option("--generator", default=None, metavar="DIR",
              help="A generator saved by `lagaug fit`, used by every repeat instead of fitting one per repeat.")
@click.option("--generator-val/--no-generator-val", default=True, show_default=True,
              help="Let the generator early-stop on the validation images, or fit it for its full length.")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="Significance level.")
@click.option("--test", "test_name", default="wilcoxon", show_default=True,
              type=click.Choice(["wilcoxon", "permutation"]),
              help="Paired test over repeats: exact Wilcoxon signed-rank, or sign-flip permutation on the mean.")
@click.option("--keep-checkpoints", is_flag=True, help="Keep the classifiers of finished cells.")
@click.option("--gate-distance", default=0.01, show_default=True, type=float,
              help="METHOD+gate: near-duplicate threshold (mean absolute pixel difference to the source, 0..1).")
@click.option("--out", default=None, metavar="DIR", help="Run directory [lagaug-runs/compare-METHOD-TIME].")
@click.option("--resume", is_flag=True, help="Continue the run in --out; finished cells are not redone.")
@region_options
@refit_option
@report_option
@pass_plugins
@friendly_errors
def compare(plugins, method, arms, variants, pseudo_threshold, pseudo_cap, pseudo_rounds, repeats, train_size, proportional, val_fraction, test_size, synthetic_per_image,
            classic_overrides, data, unlabeled, image_size, seed, split_seed, device, bad_images, quiet, preset, epochs,
            classifier, classifier_aug, classifier_overrides, threads, executor, ray_address, ray_gpus, members,
            batch_size, lr, budget, overrides, generator, generator_val, alpha, test_name, keep_checkpoints,
            gate_distance, out, resume, region_source, normal_class, refit, report) -> None:
    """Train classifiers side by side on real, classic, synthetic (METHOD), classic+METHOD,
    duplicate and pseudo-labelled training sets, for one method or several; report macro-F1 /
    accuracy / AUC with 95% intervals over repeats and paired significance tests."""
    import time

    from lagaug.cli import render
    from lagaug.core.compare import CompareConfig, parse_variant, run_compare
    from lagaug.core.config import parse_overrides
    from lagaug.core.errors import ConfigError
    from lagaug.core.progress import Progress

    if out is None:
        if resume:
            raise ConfigError("--resume needs --out DIR: the run directory to continue")
        out = str(Path("lagaug-runs") / f"compare-{method or 'arms'}-{time.strftime('%Y%m%d-%H%M%S')}")
    parsed = dict(parse_variant(v) for v in variants)
    if len(parsed) < len(variants):
        raise ConfigError("--arm: a label is given twice; give every variant its own label")
    ensemble = parse_overrides(classifier_overrides)
    for key, value in (("classifier", classifier), ("epochs", epochs), ("members", members),
                       ("batch_size", batch_size), ("lr", lr), ("aug", classifier_aug)):
        if value is not None:
            ensemble.setdefault(key, value)
    config = CompareConfig(
        method=method, arms=None if arms is None else [a for a in arms.split(",") if a.strip()], variants=parsed,
        pseudo_threshold=pseudo_threshold, pseudo_cap=pseudo_cap, pseudo_rounds=pseudo_rounds,
        data=data, unlabeled=unlabeled, image_size=image_size, repeats=repeats, train_size=train_size,
        balanced=not proportional, val_fraction=val_fraction, test_size=test_size,
        synthetic_per_image=synthetic_per_image, classic=parse_overrides(classic_overrides), preset=preset,
        ensemble=ensemble, budget=budget, set=parse_overrides(overrides), generator=generator, generator_val=generator_val, alpha=alpha, test=test_name, seed=seed, split_seed=split_seed,
        device=device, out=out, bad_images=bad_images, keep_checkpoints=keep_checkpoints,
        threads=use_threads(threads), gate_distance=gate_distance, executor=executor, ray_address=ray_address,
        ray_gpus=ray_gpus, region_source=region_source, normal_classes=list(normal_class) or None, refit=refit,
    )
    progress = Progress(quiet=quiet, console=render.console(stderr=True))
    result = run_compare(config, progress, resume=resume, plugins=plugins)
    results_table(result)
    write_after_run(result.run_dir, plugins, report)
