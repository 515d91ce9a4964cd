"""Behaviour of ``lagaug compare``: arms, splits, seeds, files, tests, resume, the classic transform,
the Garay-Maestre CNN and the CLI's errors. Tiny synthetic data and a tiny fake method only."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass

import pytest
import torch

from lagaug import hookimpl
from lagaug.core.classifier.classic import ClassicAugment, ClassicConfig, affine
from lagaug.core.compare import RESULT_COLUMNS, Compare, CompareConfig, carve_validation, draw_subset, run_compare
from lagaug.core.compare.summary import summarise_cells
from lagaug.core.contract.method import GeneratorMethod, Latents, Synthesis
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data.dataset import DataSplits, ImageSet
from lagaug.core.errors import ConfigError, DataError
from lagaug.testing import TEST_ENSEMBLE, learnable_set

CLASSES = ["a", "b", "c"]


@dataclass
class FakeConfig:
    strength: float = 0.1


class FakeMethod(GeneratorMethod):
    """Makes the negative of each source image plus a little noise (visibly not a copy)."""

    name = "fake"
    Config = FakeConfig

    def fit(self, train, ctx, unlabeled=None):
        return {"images": len(train)}

    def encode(self, images, soft, ctx):
        return Latents({"x": images}, ctx.batch_rows(len(images)), soft)

    def resample(self, latents, ctx):
        rows = latents.repeat(ctx.variants)
        noise = torch.rand(rows.codes["x"].shape, generator=ctx.generator) * self.config.strength
        return Latents({"x": (1 - rows.codes["x"] + noise).clamp(0, 1)}, rows.source, rows.soft)

    def decode(self, latents, ctx):
        return Synthesis(latents.codes["x"], latents.soft, latents.source)


class CopyMethod(FakeMethod):
    """A negative control: its "synthetic" images are exact copies of their sources."""

    name = "copy"

    def resample(self, latents, ctx):
        return latents.repeat(ctx.variants)


class OracleMethod(FakeMethod):
    """A positive control: each "synthetic" image is a fresh real image of the source's class,
    drawn from a bank of real images the arms never see otherwise — more real data."""

    name = "oracle"
    bank: ImageSet | None = None

    def resample(self, latents, ctx):
        rows = latents.repeat(ctx.variants)
        classes = rows.soft.argmax(1)
        picks = []
        for c in classes.tolist():
            idx = torch.nonzero(self.bank.labels == c).flatten()
            picks.append(int(idx[torch.randint(len(idx), (1,), generator=ctx.generator)]))
        return Latents({"x": self.bank.float_images(picks)}, rows.source, rows.soft)


class FakePlugin:
    @hookimpl
    def lagaug_register_methods(self, register):
        register(FakeMethod)
        register(CopyMethod)
        register(OracleMethod)


@pytest.fixture(scope="module")
def pm():
    return make_plugin_manager(extra_plugins=[("fake", FakePlugin())])


@pytest.fixture
def fake_method(pm):
    return pm


def image_set(n: int, split: str, seed: int) -> ImageSet:
    """``n`` 16x16 images of three classes: a bright band whose row depends on the class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    x = torch.rand(n, 1, 16, 16, generator=g) * 0.3
    for i, c in enumerate(labels.tolist()):
        x[i, 0, 2 + 4 * c : 6 + 4 * c, :] += 0.6
    return ImageSet(x, labels, CLASSES, [f"{split}/{i}" for i in range(n)])


@pytest.fixture
def splits() -> DataSplits:
    return DataSplits(image_set(60, "train", 0), image_set(0, "val", 1), image_set(30, "test", 2))


def config(tmp_path, **kw) -> CompareConfig:
    base = dict(method="fake", repeats=2, train_size=24, synthetic_per_image=1.5, out=str(tmp_path / "run"),
                ensemble=dict(classifier="garay_cnn_small", members=1, epochs=1, batch_size=16, min_epoch_size=0))
    base.update(kw)
    return CompareConfig(**base)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, pm):
    """One comparison shared by the tests that read it (it is the costly part)."""
    splits = DataSplits(image_set(60, "train", 0), image_set(0, "val", 1), image_set(30, "test", 2))
    return run_compare(config(tmp_path_factory.mktemp("cmp")), splits=splits, plugins=pm), splits


# -- arms, splits, seeds ---------------------------------------------------------------------------


def test_arm_sizes_and_duplicate_copies_the_sources(finished):
    result, splits = finished
    cells = {(c["repeat"], c["arm"]): c for c in result.cells}
    assert len(cells) == 2 * 5
    for r in range(2):
        real = cells[r, "real"]["train_size"]
        assert real == 21  # 24 drawn, 15% of each class (1 of 8) kept for validation
        assert cells[r, "classic"]["train_size"] == real
        assert cells[r, "fake"]["added"] == round(1.5 * real) == cells[r, "classic+fake"]["added"]
        assert cells[r, "duplicate"]["added"] == cells[r, "fake"]["added"]
    rep = result.run_dir / "repeats" / "r000"
    manifest = [json.loads(l) for l in (rep / "synthetic" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == cells[0, "fake"]["added"]
    # every training image is a source once or twice (1.5 per image), and the label is the source's
    counts = {}
    for line in manifest:
        counts[line["source"][0]] = counts.get(line["source"][0], 0) + 1
        assert [line["label"]] == line["source_label"] and line["source_weight"] == [1.0]
    assert sorted(set(counts.values())) == [1, 2] and len(counts) == 21

    run = Compare(config(result.run_dir.parent, out=str(result.run_dir)), resume=True, splits=splits,
                  plugins=make_plugin_manager(extra_plugins=[("fake", FakePlugin())]))
    run.prepare()
    train, val = run.split(0)
    extra, kept = run.synthetic(0, train, val, "fake")
    assert kept is None  # no METHOD+gate arm: the gate did not run
    index = {i: k for k, i in enumerate(train.ids)}
    dup = run.arm_set("duplicate", train, run.added_images(0, ["duplicate"], train, val)["duplicate"])
    copies = dup.subset(range(len(train), len(dup)))
    sources = torch.tensor([index[s[0]] for s in extra.sources])
    assert torch.equal(copies.images, train.images[sources])  # copies of the very sources
    assert torch.equal(copies.labels, train.labels[sources])
    assert not bool(copies.synthetic.any())
    assert not torch.equal(extra.images, copies.images)  # the method's images are not copies
    assert len(set(dup.ids)) == len(dup)


def test_same_split_and_seeds_across_arms_new_draw_per_repeat(finished):
    result, _ = finished
    for r in range(2):
        cells = [c for c in result.cells if c["repeat"] == r]
        assert len({c["train_ids"] for c in cells}) == 1
        assert len({c["val_ids"] for c in cells}) == 1
        assert len({tuple(c["member_seeds"]) for c in cells}) == 1
    first = [c for c in result.cells if c["arm"] == "real"]
    assert first[0]["train_ids"] != first[1]["train_ids"]
    assert first[0]["member_seeds"] != first[1]["member_seeds"]


def test_validation_is_carved_from_training_images_never_test(finished):
    result, splits = finished
    test_ids = set(splits.test.ids)
    for r in range(2):
        split = json.loads((result.run_dir / "repeats" / f"r{r:03d}" / "split.json").read_text())
        assert split["val"] and not set(split["val"]) & test_ids
        assert not set(split["val"]) & set(split["train"])
        assert all(i.startswith("train/") for i in split["train"] + split["val"])


def test_carve_and_draw_are_per_class():
    data = image_set(30, "train", 0)
    g = torch.Generator().manual_seed(0)
    idx = draw_subset(data, 12, g)
    assert data.subset(idx).class_counts() == [4, 4, 4]
    tr, va = carve_validation(data.subset(idx), 0.25, seed=0)
    assert data.subset(idx).subset(va).class_counts() == [1, 1, 1] and len(tr) == 9
    few_b = [i for i in range(30) if i % 3 != 1 or i < 15]  # 10 a, 5 b, 10 c
    with pytest.raises(ConfigError, match="class 'b' has only 5 images, 8 needed"):
        draw_subset(data.subset(few_b), 24, g)


def test_overlapping_validation_and_test_is_refused(tmp_path, fake_method):
    train = image_set(30, "train", 0)
    leaky = DataSplits(train, train.subset(range(3)), train.subset(range(3)))  # val == test
    with pytest.raises(DataError, match="is both a training/validation and a test image"):
        run_compare(config(tmp_path, train_size=None), splits=leaky, plugins=fake_method)


# -- files -----------------------------------------------------------------------------------------


def test_results_files_have_the_expected_columns(finished):
    result, _ = finished
    root = result.run_dir
    for name in ("config.json", "cells.jsonl", "results.csv", "comparisons.csv", "results.md", "results.png"):
        assert (root / name).is_file(), name
    header = next(csv.reader((root / "results.csv").open()))
    assert header == RESULT_COLUMNS
    rows = list(csv.DictReader((root / "results.csv").open()))
    assert [r["arm"] for r in rows] == ["real", "classic", "fake", "classic+fake", "duplicate"]
    cells = [json.loads(l) for l in (root / "cells.jsonl").read_text().splitlines()]
    assert len(cells) == 10
    assert {"repeat", "arm", "train_size", "added", "f1", "accuracy", "auc", "member_seeds"} <= set(cells[0])
    md = (root / "results.md").read_text()
    assert "| arm |" in md and "exact Wilcoxon signed-rank" in md and "Holm" in md
    assert "fake vs duplicate | primary | macro-F1" in md and "classic+fake vs classic | primary" in md
    for line in md.splitlines():  # a star marks a corrected p below alpha, never a raw p
        if " vs " in line and line.startswith("| "):
            raw, holm, significant = [x.strip() for x in line.strip("|").split("|")[-3:]]
            assert not raw.endswith("*") and holm.endswith("*") == (significant == "yes"), line
    # the report states the validation actually carved (1 of 8 per class: 3 of 24), from the cells
    assert "21 per repeat after validation was carved: 3 validation images" in md
    assert json.loads((root / "config.json").read_text())["method"] == "fake"


# -- significance ----------------------------------------------------------------------------------


def cells_for(arm_values: dict[str, list[float]]) -> list[dict]:
    return [{"repeat": r, "arm": arm, "train_size": 10, "added": 0, "f1": v, "accuracy": v, "auc": v}
            for arm, values in arm_values.items() for r, v in enumerate(values)]


def test_primary_comparisons_are_one_holm_family_and_the_rest_another():
    up = [0.70, 0.72, 0.69, 0.75, 0.71, 0.73, 0.70]
    cells = cells_for({"real": [v - 0.1 for v in up], "classic": [v - 0.05 for v in up], "fake": up,
                       "classic+fake": up, "duplicate": [v - 0.1 + 0.001 * i for i, v in enumerate(up)]})
    arms = ["real", "classic", "fake", "classic+fake", "duplicate"]
    rows, comps = summarise_cells(cells, arms, "fake")
    primary = [c for c in comps if c["family"] == "primary"]
    assert sorted((c["arm"], c["baseline"]) for c in primary) == [
        ("classic+fake", "classic"), ("fake", "duplicate"), ("fake", "real")]
    assert all(c["metric"] == "f1" for c in primary)
    # 7 repeats all one sign: raw p = 2/128; Holm over 3 primary comparisons triples the smallest
    fake_real = next(c for c in primary if c["baseline"] == "real")
    assert fake_real["p"] == pytest.approx(2 / 128) and fake_real["p_holm"] == pytest.approx(3 * 2 / 128)
    assert fake_real["significant"] and fake_real["delta"] == pytest.approx(0.1)
    secondary = [c for c in comps if c["family"] == "secondary"]
    assert len(secondary) == len(comps) - 3
    assert all(c["p_holm"] >= c["p"] for c in comps)
    row = next(r for r in rows if r["arm"] == "fake")
    assert row["f1_p_vs_real"] == fake_real["p_holm"] and row["f1_significant_vs_real"]


def test_compare_detects_a_real_effect_and_not_a_copy(tmp_path, pm):
    """Positive control: extra *real* images help, significantly. Negative control: a method whose
    images are exact copies of its sources is indistinguishable from the duplicate arm."""
    bank = learnable_set(400, seed=7, contrast=0.3, prefix="bank")
    OracleMethod.bank = bank
    splits = DataSplits(learnable_set(120, seed=8, contrast=0.3), learnable_set(0, seed=9, split="val"),
                        learnable_set(90, seed=10, split="test", contrast=0.3))
    ens = dict(TEST_ENSEMBLE, members=1, epochs=6)
    # 6 repeats: the smallest exact two-sided p is 2/64 < 0.05; 2 images per class, the oracle adds 60
    oracle = run_compare(CompareConfig(method="oracle", arms=["real", "method"], repeats=6, train_size=6,
                                       val_fraction=0, synthetic_per_image=10, ensemble=ens,
                                       out=str(tmp_path / "oracle")), splits=splits, plugins=pm)
    gain = next(c for c in oracle.comparisons if c["family"] == "primary")
    assert gain["delta"] > 0.05 and gain["significant"], gain
    copy = run_compare(CompareConfig(method="copy", arms=["real", "method", "duplicate"], repeats=3, train_size=6,
                                     val_fraction=0, synthetic_per_image=2, ensemble=ens,
                                     out=str(tmp_path / "copy")), splits=splits, plugins=pm)
    same = next(c for c in copy.comparisons if (c["arm"], c["baseline"], c["metric"]) == ("copy", "duplicate", "f1"))
    assert same["delta"] == 0.0 and same["p"] == 1.0 and not same["significant"]


# -- the classic transform -------------------------------------------------------------------------


def test_classic_transform_is_seeded_by_the_generator():
    x = image_set(8, "x", 0).float_images()
    aug = ClassicAugment()
    one = aug(x, torch.Generator().manual_seed(3))
    two = aug(x, torch.Generator().manual_seed(3))
    other = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(one, two) and not torch.equal(one, other)
    assert one.shape == x.shape and not torch.equal(one, x)
    state = torch.random.get_rng_state()
    aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(state, torch.random.get_rng_state())  # never touches the global RNG


def test_rotation_rotates_and_shift_shifts():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 6] = 1.0  # two pixels right of the centre
    turned = affine(x, torch.tensor([90.0]), torch.zeros(1), torch.zeros(1))
    assert (turned[0, 0] > 0.5).nonzero().tolist() == [[2, 4]]  # now two above: counter-clockwise
    moved = affine(x, torch.zeros(1), torch.tensor([2 / 9]), torch.tensor([-1 / 9]))
    assert (moved[0, 0] > 0.5).nonzero().tolist() == [[3, 8]]
    bar = torch.zeros(1, 1, 9, 9)
    bar[0, 0, 4, :] = 1.0
    assert torch.allclose(affine(bar, torch.tensor([90.0]), torch.zeros(1), torch.zeros(1))[0, 0, :, 4],
                          torch.ones(9))
    flipped = ClassicAugment(ClassicConfig(rotation=0, shift_x=0, shift_y=0, hflip=True))(
        x.repeat(64, 1, 1, 1), torch.Generator().manual_seed(0))
    assert 0 < int((flipped[:, 0, 4, 2] > 0.5).sum()) < 64  # about half are mirrored


def test_classic_config_errors():
    with pytest.raises(ConfigError, match="rotation"):
        ClassicConfig(rotation=-1)
    with pytest.raises(ConfigError, match="fill"):
        ClassicConfig(fill="wrap")


# -- resume, budget --------------------------------------------------------------------------------


def test_resume_skips_finished_cells(tmp_path, splits, fake_method, monkeypatch):
    cfg = config(tmp_path, repeats=1)
    run_compare(cfg, splits=splits, plugins=fake_method)
    (tmp_path / "run" / "repeats" / "r000" / "arms" / "classic" / "metrics.json").unlink()
    import lagaug.core.compare.cells as compare_module

    calls = []
    real_train = compare_module.train_ensemble
    monkeypatch.setattr(compare_module, "train_ensemble", lambda *a, **k: calls.append(k["label"]) or real_train(*a, **k))
    fits = []
    monkeypatch.setattr(FakeMethod, "fit", lambda self, *a, **k: fits.append(1) or {})
    with pytest.raises(ConfigError, match="--resume"):
        run_compare(cfg, splits=splits, plugins=fake_method)
    result = run_compare(cfg, splits=splits, resume=True, plugins=fake_method)
    assert calls == ["repeat 0: classic"] and fits == []  # nothing else trained, no generator refit
    assert len(result.cells) == 5
    with pytest.raises(ConfigError, match="was started with seed=0"):
        run_compare(config(tmp_path, repeats=1, seed=1), splits=splits, resume=True, plugins=fake_method)


def test_resume_with_more_repeats_adds_repeats_and_keeps_the_finished_ones(tmp_path, splits, fake_method):
    first = run_compare(config(tmp_path, repeats=1), splits=splits, plugins=fake_method)
    before = {c["arm"]: c["f1"] for c in first.cells}
    stamp = (tmp_path / "run" / "repeats" / "r000" / "arms" / "real" / "metrics.json").stat().st_mtime_ns
    grown = run_compare(config(tmp_path, repeats=2), splits=splits, resume=True, plugins=fake_method)
    assert sorted({c["repeat"] for c in grown.cells}) == [0, 1] and len(grown.cells) == 10
    assert {c["arm"]: c["f1"] for c in grown.cells if c["repeat"] == 0} == before
    assert (tmp_path / "run" / "repeats" / "r000" / "arms" / "real" / "metrics.json").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "run" / "config.json").read_text())["repeats"] == 2
    assert all(r["repeats"] == 2 for r in json.loads((tmp_path / "run" / "results.json").read_text())["rows"])
    # a fresh two-repeat run gives the same figures: repeat r's seeds do not depend on the count
    fresh = run_compare(config(tmp_path / "fresh", repeats=2), splits=splits, plugins=fake_method)
    assert sorted((c["repeat"], c["arm"], c["f1"]) for c in fresh.cells) == \
        sorted((c["repeat"], c["arm"], c["f1"]) for c in grown.cells)
    with pytest.raises(ConfigError, match="repeats may only grow on --resume"):
        run_compare(config(tmp_path, repeats=1), splits=splits, resume=True, plugins=fake_method)


def test_steps_budget_gives_every_arm_the_same_steps(tmp_path, splits, fake_method):
    result = run_compare(config(tmp_path, repeats=1, budget="steps",
                                ensemble=dict(classifier="garay_cnn_small", members=1, epochs=2, batch_size=16,
                                              min_epoch_size=0)),
                         splits=splits, plugins=fake_method)
    steps = {c["arm"]: c["epochs"] * math.ceil(c["train_size"] / 16) for c in result.cells}
    assert steps["real"] == steps["fake"] == 8 and steps["classic"] == steps["duplicate"] == 8


# -- the Garay-Maestre CNN -------------------------------------------------------------------------


def test_garay_cnn_is_table_1_and_works_as_ensemble_classifier():
    import timm

    import lagaug.core.classifier.cnn as cnn
    from lagaug.core.ensemble import build_classifier

    assert timm.is_model("garay_cnn") and timm.is_model("garay_cnn_small")
    model = build_classifier("garay_cnn", 10, 1)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(64, (3, 3)), (128, (3, 3)), (128, (3, 3)), (128, (3, 3))]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(7 * 7 * 128, 128), (128, 10)]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.modules()) == 3
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert cnn.GarayCNN(3, 3, 0.25)(torch.zeros(1, 3, 40, 40)).shape == (1, 3)


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--arms", "real,gan"], "--arms: unknown arm 'gan'; choose from: real, classic, duplicate, pseudo-label, and for "
                             "NAME a method or an --arm label: NAME, classic+NAME, NAME+gate (methods: "),
    (["--arms", "real,real"], "--arms: arm 'real' is listed twice"),
    (["--arm", "ok-only"], "--arm 'ok-only': expected LABEL=METHOD or LABEL=METHOD:key=value,key=value"),
    (["--arm", "v=fake:strength=0.2", "--arm", "v=copy"], "--arm: a label is given twice"),
    (["--arm", "v=fake:colour=red"], "--arm v: unknown key 'colour'"),
    (["--arm", "v=fake:classes=zebra"], "--arm v: classes='zebra' is not a class of the data (0, 1)"),
    (["--arm", "v=nothing"], "unknown method 'nothing'"),
    (["--arm", "real=fake"], "--arm real: 'real' cannot name an arm"),
    (["--arm", "fake=fake:strength=0.2"], "--arm fake: the label is --method's own arm"),
    (["--arms", "real,pseudo-label"], "--arms pseudo-label: the arm labels an unlabelled pool; give one with --unlabeled"),
    (["--pseudo-threshold", "0"], "--pseudo-threshold must be in (0, 1], got 0.0"),
    (["--pseudo-cap", "0"], "--pseudo-cap must be at least 1, got 0"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--synthetic-per-image", "0"], "--synthetic-per-image must be positive, got 0.0"),
    (["--classic-set", "rotation=400"], "classic: rotation must be between 0 and 180 degrees"),
    (["--classic-set", "spin=1"], "unknown key 'spin'"),
    (["--val-fraction", "1.5"], "--val-fraction must be in [0, 1), got 1.5"),
    (["--classifier", "no_such_net"], "--classifier 'no_such_net' is not a timm model"),
    (["--method", "nope"], "unknown method 'nope'"),
    (["--resume"], "--resume needs --out DIR"),
])
def test_bad_options_give_one_line_errors(args, message, fake_method, tiny_npz, tmp_path):
    from click.testing import CliRunner

    from lagaug.cli.main import make_cli

    base = ["compare", "--method", "fake", "--data", str(tiny_npz), "--quiet"]
    if "--resume" not in args:
        base += ["--out", str(tmp_path / "out")]
    if "--method" in args:
        base = base[:1] + base[3:]
    result = CliRunner().invoke(make_cli(fake_method), base + args, obj=fake_method)
    assert result.exit_code == 1, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output


def test_cli_compare_runs_and_prints_the_table(fake_method, tiny_npz, tmp_path):
    from click.testing import CliRunner

    from lagaug.cli.main import make_cli

    out = tmp_path / "cli-run"
    result = CliRunner().invoke(make_cli(fake_method), obj=fake_method, args=[
        "compare", "--method", "fake", "--data", str(tiny_npz), "--image-size", "16", "--quiet",
        "--arms", "real,method,duplicate", "--repeats", "2", "--classifier", "garay_cnn_small",
        "--epochs", "1", "--members", "1", "--synthetic-per-image", "0.5", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "fake vs duplicate: macro-F1" in result.output and "Holm-corrected" in result.output
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["arm"] for r in rows] == ["real", "fake", "duplicate"]


def test_a_saved_generator_serves_every_repeat_without_fitting(tmp_path, pm, monkeypatch):
    from lagaug.core.run.generators import fit_generator

    splits = DataSplits(image_set(60, "train", 0), image_set(0, "val", 1), image_set(30, "test", 2))
    gen = fit_generator("fake", splits, out=tmp_path / "gen", plugins=pm)
    fits, learned = [], []
    monkeypatch.setattr(FakeMethod, "fit", lambda self, *a, **k: fits.append(1) or {})
    real_resample = FakeMethod.resample

    def resample(self, latents, ctx):  # a stage that learns something lazily and keeps it
        learned.append(getattr(self, "learned", 0))
        self.learned = 1
        return real_resample(self, latents, ctx)

    monkeypatch.setattr(FakeMethod, "resample", resample)
    result = run_compare(config(tmp_path, arms=["real", "method"], generator=str(tmp_path / "gen")), splits=splits,
                         plugins=pm)
    assert fits == [] and len(result.cells) == 4
    assert learned and set(learned) == {0}  # every repeat starts from the saved generator, not the last repeat's
    assert not (result.run_dir / "repeats" / "r000" / "generator").exists()
    assert gen.name == "fake"
    with pytest.raises(ConfigError, match="was started with other generator"):
        (tmp_path / "gen" / "generator.json").write_text((tmp_path / "gen" / "generator.json").read_text() + " ")
        run_compare(config(tmp_path, arms=["real", "method"], generator=str(tmp_path / "gen")), splits=splits,
                    plugins=pm, resume=True)
