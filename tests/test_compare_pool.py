"""The pool regime of ``lagaug compare``: unlabelled pools (npz keys, random access, ids), pools
that share images with the test split, the ``pseudo-label`` arm, several methods and named
variants in one comparison (sharing fits), and the comparisons the summary makes of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lagaug import hookimpl
from lagaug.core.compare import CompareConfig, parse_variant, run_compare
from lagaug.core.compare.arms import comparison_pairs, resolve_plan
from lagaug.core.compare.pseudo import choose
from lagaug.core.compare.summary import summarise_cells
from lagaug.core.contract.method import GeneratorMethod, Latents, Synthesis
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data.dataset import DataSplits, InMemoryPool, to_uint8
from lagaug.core.data.pools import ArrayPool, check_pool_disjoint, indexed_batches, load_unlabeled
from lagaug.core.data.synthetic import SyntheticPool
from lagaug.core.errors import ConfigError, DataError
from lagaug.testing import TEST_ENSEMBLE, learnable_set, learnable_splits

# -- a method with a fit-time and a stage option ---------------------------------------------------


@dataclass
class StagedConfig:
    strength: float = 0.1  # read by the stages only (declared in stage_options)
    width: int = 1  # read by fit: a fit-time option


class StagedMethod(GeneratorMethod):
    """The negative of each source plus ``strength`` of noise; records every fit it makes."""

    name = "staged"
    Config = StagedConfig
    stage_options = frozenset({"strength"})
    fits: list = []

    def fit(self, train, ctx, unlabeled=None):
        StagedMethod.fits.append((self.config.width, self.config.strength, None if unlabeled is None else len(unlabeled)))
        return {"images": len(train)}

    def encode(self, images, soft, ctx):
        return Latents({"x": images}, ctx.batch_rows(len(images)), soft)

    def resample(self, latents, ctx):
        rows = latents.repeat(ctx.variants)
        noise = torch.rand(rows.codes["x"].shape, generator=ctx.generator) * float(self.option(ctx, "strength"))
        return Latents({"x": (1 - rows.codes["x"] + noise).clamp(0, 1)}, rows.source, rows.soft)

    def decode(self, latents, ctx):
        return Synthesis(latents.codes["x"], latents.soft, latents.source)


class Plugin:
    @hookimpl
    def lagaug_register_methods(self, register):
        register(StagedMethod)


@pytest.fixture(scope="module")
def pm():
    return make_plugin_manager(extra_plugins=[("staged", Plugin())])


ENS = dict(TEST_ENSEMBLE, members=1, epochs=3)  # learns the learnable set well (for the pseudo-labels)
FAST = dict(classifier="garay_cnn_small", members=1, epochs=1, batch_size=16, min_epoch_size=0)  # learns little, quickly


def pool_splits(pool_counts=(30, 30, 30), leak: int = 0) -> tuple[DataSplits, object]:
    """The learnable splits with a well-separated labelled pool (its labels are kept for checking,
    never given to the run); ``leak`` test images are slipped into the pool."""
    splits = learnable_splits(seed=3)
    pool = learnable_set(pool_counts, seed=11, split="train", prefix="pool")
    if leak:
        pool = pool.concat(splits.test.subset(range(leak)))
    splits.unlabeled = InMemoryPool(pool)
    return splits, pool


# -- pools -----------------------------------------------------------------------------------------


def test_npz_key_loads_that_array_and_a_missing_key_names_the_keys(tmp_path):
    x_pool = np.full((5, 8, 8), 200, np.uint8)
    x_train = np.zeros((3, 8, 8), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x_train, x_pool=x_pool, y_train=np.zeros(3))
    pool = load_unlabeled(f"{tmp_path / 'd.npz'}:x_pool", image_size=8)
    assert len(pool) == 5 and float(pool.images_at([0]).mean()) == pytest.approx(200 / 255)
    assert len(load_unlabeled(f"{tmp_path / 'd.npz'}:x_train", image_size=8)) == 3
    assert len(load_unlabeled(tmp_path / "d.npz", image_size=8)) == 5  # no key: x, then x_pool, then x_train
    with pytest.raises(DataError) as err:
        load_unlabeled(f"{tmp_path / 'd.npz'}:x_nope", image_size=8)
    assert str(err.value) == (f"{tmp_path / 'd.npz'} has no array 'x_nope' (it has: x_pool, x_train, y_train); "
                              "name one of them after the colon")
    with pytest.raises(DataError, match="does not exist"):
        load_unlabeled(f"{tmp_path / 'missing.npz'}:x_pool")


def test_every_pool_gives_images_by_index_and_a_stable_id(tmp_path):
    arr = (np.arange(6)[:, None, None] * 40 + np.zeros((6, 8, 8))).astype(np.uint8)
    folder = tmp_path / "pool"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(arr[i]).save(folder / f"{i}.png")
    Image.fromarray(arr[3]).save(folder / "sub" / "3.png")
    pools = {"array": ArrayPool(arr, 8, 1), "folder": load_unlabeled(folder, image_size=8),
             "synthetic": SyntheticPool(5, 16, 0), "memory": InMemoryPool(learnable_set(4))}
    for name, pool in pools.items():
        picked = pool.images_at([2, 0])
        assert picked.dtype == torch.float32 and picked.shape[0] == 2, name
        assert torch.equal(picked[1], pool.images_at([0])[0]), name  # the same image whatever the batch
        batches = list(indexed_batches(pool, 3))
        assert [i for idx, _ in batches for i in idx] == list(range(len(pool))), name
        assert torch.equal(torch.cat([x for _, x in batches]), pool.images_at(range(len(pool)))), name
        streamed = torch.cat(list(pool.iter_batches(2, torch.Generator().manual_seed(0))))
        assert sorted(map(tuple, to_uint8(streamed).flatten(1).tolist())) == sorted(
            map(tuple, to_uint8(pool.images_at(range(len(pool)))).flatten(1).tolist())), name
    assert pools["array"].id_of(4) == "pool:4" and pools["synthetic"].id_of(2) == "pool:2"
    assert [pools["folder"].id_of(i) for i in range(4)] == ["pool:0.png", "pool:1.png", "pool:2.png", "pool:sub/3.png"]
    assert pools["folder"].images_at([3])[0, 0, 0, 0] == pytest.approx(120 / 255)
    assert pools["memory"].id_of(1) == "pool:train/0001"
    (folder / "bad.png").write_bytes(b"not an image")
    broken = load_unlabeled(folder, image_size=8)
    with pytest.warns(UserWarning, match="bad.png"):
        assert [i for idx, _ in indexed_batches(broken, 10) for i in idx] == [0, 1, 2, 4]  # bad.png is 3
    assert broken.id_of(4) == "pool:sub/3.png"
    with pytest.raises(DataError, match="bad.png"):
        broken.images_at([3])


def test_a_pool_holding_a_test_image_is_refused(tmp_path, pm):
    splits, _ = pool_splits(leak=2)
    with pytest.raises(DataError) as err:
        check_pool_disjoint(splits.unlabeled, splits.test)
    assert str(err.value) == ("unlabeled pool: 2 of its 92 images are pixel-identical to test images "
                              "(e.g. pool:test/0000 = test image test/0000); a pool must not hold test images: remove them")
    check_pool_disjoint(pool_splits()[0].unlabeled, splits.test)  # a clean pool passes
    with pytest.raises(DataError, match="pixel-identical to test images"):
        run_compare(CompareConfig(method="staged", arms=["real", "pseudo-label"], repeats=1, ensemble=FAST,
                                  out=str(tmp_path / "run")), splits=splits, plugins=pm)
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("command", ["compare", "augment"])
def test_the_cli_refuses_a_pool_sharing_an_image_with_the_test_split(command, tmp_path, pm):
    from lagaug.cli.main import make_cli
    from lagaug.testing import learnable_npz

    path = learnable_npz(tmp_path / "d.npz")
    with np.load(path) as z:
        arrays = dict(z)
    arrays["x_pool"] = np.concatenate([arrays["x_train"][:5], arrays["x_test"][3:4]])
    np.savez(path, **arrays)
    args = [command, "--method", "staged", "--data", str(path), "--unlabeled", f"{path}:x_pool",
            "--image-size", "16", "--quiet", "--out", str(tmp_path / "out"), "--classifier", "garay_cnn_small",
            "--epochs", "1"]  # tiny, should the refusal ever fail
    args += (["--arms", "real", "--repeats", "1", "--members", "1"] if command == "compare"
             else ["--ensemble", "1", "--iterations", "0"])
    result = CliRunner().invoke(make_cli(pm), args, obj=pm)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0] == ("Error: unlabeled pool: 1 of its 6 images are pixel-identical to test images (e.g. pool:5 = "
                        "test image npz:test/3); a pool must not hold test images: remove them")
    assert not (tmp_path / "out").exists()


# -- pseudo-labels ---------------------------------------------------------------------------------


def test_choose_keeps_the_threshold_and_the_cap_per_class():
    classes = torch.tensor([0, 0, 0, 1, 1, 2, 0])
    conf = torch.tensor([0.95, 0.5, 0.99, 0.91, 0.92, 0.89, 0.95])
    assert choose(classes, conf, 0.9, 2, 3) == [2, 0, 4, 3]  # class 0: 0.99, then 0.95 (the earlier of the tie)
    assert choose(classes, conf, 0.9, 1, 3) == [2, 4]
    assert choose(classes, conf, 0.5, 10, 3) == [2, 0, 6, 1, 4, 3, 5]


def test_pseudo_label_arm_labels_a_separated_pool_right_and_records_it(tmp_path, pm, monkeypatch):
    splits, pool = pool_splits()
    truth = dict(zip(pool.ids, pool.labels.tolist()))
    cfg = CompareConfig(method="staged", arms=["pseudo-label"], repeats=1, ensemble=ENS,
                        pseudo_threshold=0.6, pseudo_cap=12, pseudo_rounds=2, out=str(tmp_path / "run"))
    result = run_compare(cfg, splits=splits, plugins=pm)
    folder = result.run_dir / "repeats" / "r000" / "pseudo-label"
    rounds = {k: [json.loads(x) for x in (folder / f"round{k}.jsonl").read_text().splitlines()] for k in (1, 2)}
    for k, lines in rounds.items():
        assert lines and all(line["round"] == k and line["confidence"] >= 0.6 for line in lines)
        counts = {c: sum(line["label"] == c for line in lines) for c in pool.class_names}
        assert max(counts.values()) <= 12
        right = sum(truth[line["id"].removeprefix("pool:")] == line["label_index"] for line in lines)
        assert right / len(lines) > 0.6, (k, right, len(lines))  # chance: 1/3
        assert all(line["id"] == f"pool:{pool.ids[line['index']]}" for line in lines)
    summary = json.loads((folder / "summary.json").read_text())
    assert [s["round"] for s in summary["rounds"]] == [1, 2] and summary["rounds"][0]["cap"] == 12
    assert summary["rounds"][0]["labelled"] == 90
    assert summary["rounds"][0]["chosen"] == {c: sum(line["label"] == c for line in rounds[1]) for c in pool.class_names}
    assert not (folder / "round2-ensemble").exists()  # the round-2 classifiers are not kept
    cell = next(c for c in result.cells if c["arm"] == "pseudo-label")
    assert cell["added"] == len(rounds[2])  # the arm trains on the last round's images
    assert (result.run_dir / "repeats" / "r000" / "reference" / "member_00.safetensors").is_file()
    md = (result.run_dir / "results.md").read_text()
    assert "labels the pool (90 images); those with confidence >= 0.6 join" in md
    assert (folder / "grid.png").is_file()

    (result.run_dir / "repeats" / "r000" / "arms" / "pseudo-label" / "metrics.json").unlink()
    import lagaug.core.compare.pseudo as pseudo_module

    monkeypatch.setattr(pseudo_module, "predict_pool", lambda *a, **k: pytest.fail("the pool was labelled again"))
    again = run_compare(cfg, splits=splits, plugins=pm, resume=True)  # read back from the round files
    assert again.cells[0]["added"] == cell["added"] and again.cells[0]["f1"] == cell["f1"]


def test_a_pseudo_label_arm_nothing_passes_adds_nothing(tmp_path, pm):
    splits, _ = pool_splits()
    cfg = CompareConfig(method="staged", arms=["pseudo-label"], repeats=1, ensemble=FAST, pseudo_threshold=1.0,
                        out=str(tmp_path / "run"))
    result = run_compare(cfg, splits=splits, plugins=pm)
    folder = result.run_dir / "repeats" / "r000" / "pseudo-label"
    assert result.cells[0]["added"] == 0 and (folder / "round1.jsonl").read_text() == ""
    summary = json.loads((folder / "summary.json").read_text())["rounds"][0]
    assert summary["chosen"] == {"ok": 0, "spot": 0, "line": 0} and summary["labelled"] == 90


def test_pseudo_label_default_cap_matches_a_method_arm(tmp_path, pm):
    splits, _ = pool_splits()
    cfg = CompareConfig(method="staged", arms=["pseudo-label"], repeats=1, ensemble=FAST,
                        pseudo_threshold=0.01, synthetic_per_image=0.5, out=str(tmp_path / "run"))
    result = run_compare(cfg, splits=splits, plugins=pm)
    summary = json.loads((result.run_dir / "repeats" / "r000" / "pseudo-label" / "summary.json").read_text())
    assert summary["rounds"][0]["cap"] == 10  # ceil(0.5 x 56 real training images / 3 classes)
    assert result.cells[0]["added"] <= 30


# -- several methods and variants ------------------------------------------------------------------


def test_parse_variant_keeps_commas_inside_values():
    assert parse_variant("vq-ok=vqvae2:classes=ok,temperature=0.8,region=0,0,4,4") == (
        "vq-ok", {"method": "vqvae2", "set": {"temperature": "0.8", "region": "0,0,4,4"}, "classes": ["ok"]})
    assert parse_variant("a=vae") == ("a", {"method": "vae", "set": {}})
    assert parse_variant("b=vae:classes=ok,defect") == ("b", {"method": "vae", "set": {}, "classes": ["ok", "defect"]})
    with pytest.raises(ConfigError, match="'x' is not key=value"):
        parse_variant("a=vae:x")


def test_compare_runs_method_arms_variants_and_pseudo_label_sharing_fits(tmp_path, pm):
    StagedMethod.fits = []
    splits, _ = pool_splits()
    variants = {"strong": {"method": "staged", "set": {"strength": "0.5"}},  # a stage option: shares the fit
                "wide": {"method": "staged", "set": {"width": "2"}},  # a fit-time option: its own fit
                "spot-only": {"method": "staged", "classes": ["spot"]}}
    arms = ["real", "duplicate", "pseudo-label", "staged", "strong", "wide", "spot-only", "classic+strong",
            "cut-paste"]
    cfg = CompareConfig(method="staged", set={"strength": "0.2"}, arms=arms, variants=variants, repeats=2,
                        ensemble=FAST, pseudo_threshold=0.01, out=str(tmp_path / "run"))
    result = run_compare(cfg, splits=splits, plugins=pm)
    assert {(c["repeat"], c["arm"]) for c in result.cells} == {(r, a) for r in range(2) for a in arms}
    # one fit for staged, strong and spot-only (width 1), one for wide (width 2) (and the built-in cut-paste's,
    # which learns nothing) — once for both repeats, which train on the same draw; every fit sees the pool; the
    # shared fit is given the options its arms agree on
    assert sorted(StagedMethod.fits) == sorted([(1, 0.1, 90), (2, 0.2, 90)])
    gen = result.run_dir / "repeats" / "{}" / "generator" / "generator.json"
    assert Path(str(gen).format("r001")).read_bytes() == Path(str(gen).format("r000")).read_bytes()
    rep = result.run_dir / "repeats" / "r000"
    assert (rep / "generator" / "generator.json").is_file()  # --method's arms keep the classic layout
    assert (rep / "methods" / "wide" / "generator").is_dir() and (rep / "methods" / "cut-paste" / "generator").is_dir()
    assert not (rep / "methods" / "strong" / "generator").exists()  # strong uses staged's fit
    record = json.loads((result.run_dir / "arms.json").read_text())
    assert record["sources"]["strong"]["fit_group"] == "staged" and record["sources"]["wide"]["fit_group"] == "wide"
    assert record["sources"]["staged"]["fit_options"] == {}  # strength differs between its arms: not fitted in
    assert "plus the unlabelled pool (90 images;" in record["generators_fitted"]
    manifest = lambda folder: [json.loads(x) for x in (folder / "synthetic" / "manifest.jsonl").read_text().splitlines()]  # noqa: E731
    spot = manifest(rep / "methods" / "spot-only")
    n_spot = splits.train.class_counts()[1]  # the data brings its validation split: nothing is carved
    assert len(spot) == n_spot and {tuple(line["source_label"]) for line in spot} == {("spot",)}
    assert all(line["arm_source"] == "spot-only" for line in spot)
    plain, strong = manifest(rep), manifest(rep / "methods" / "strong")
    assert [line["source"] for line in plain] == [line["source"] for line in strong]  # the same sources, paired
    cells = {(c["repeat"], c["arm"]): c for c in result.cells}
    assert cells[0, "spot-only"]["added"] == n_spot and cells[0, "strong"]["added"] == len(strong)
    assert cells[0, "duplicate"]["added"] == len(plain)  # duplicate copies --method's sources
    pairs = {(c["arm"], c["baseline"]) for c in result.comparisons if c["family"] == "primary"}
    for arm in ("staged", "strong", "wide", "spot-only"):
        assert {(arm, "real"), (arm, "duplicate"), (arm, "pseudo-label"), (arm, "cut-paste")} <= pairs
    assert ("classic+strong", "real") not in pairs and not any(a == "cut-paste" for a, _ in pairs)
    md = (result.run_dir / "results.md").read_text()
    assert "methods `staged`, `cut-paste`" in md and "`strong`: method `staged` (strength=0.5); uses the fit of `staged`" in md

    StagedMethod.fits = []
    again = run_compare(cfg, splits=splits, plugins=pm, resume=True)  # nothing left to do: no fit, same cells
    assert StagedMethod.fits == [] and len(again.cells) == len(result.cells)


def test_comparison_families_with_pseudo_label_and_cut_paste():
    plan, _ = resolve_plan(["real", "duplicate", "pseudo-label", "vae", "classic+vae", "classic", "vae+gate",
                            "cut-paste"], None)
    pairs = {(a, b): p for a, b, p in comparison_pairs(plan)}
    assert {k for k, p in pairs.items() if p} == {
        ("vae", "real"), ("vae", "duplicate"), ("vae", "pseudo-label"), ("vae", "cut-paste"),
        ("classic+vae", "classic"), ("vae+gate", "vae")}
    assert pairs[("cut-paste", "real")] is False and pairs[("cut-paste", "duplicate")] is False
    assert pairs[("pseudo-label", "real")] is False and ("cut-paste", "pseudo-label") not in pairs
    alone, _ = resolve_plan(["real", "cut-paste"], None)  # with no method under test, cut-paste is the one
    assert comparison_pairs(alone) == [("cut-paste", "real", True)]
    up = [0.70, 0.72, 0.69, 0.75, 0.71, 0.73, 0.70]
    cells = [{"repeat": r, "arm": a, "train_size": 10, "added": 0, "f1": v + d, "accuracy": v, "auc": v}
             for a, d in (("real", 0), ("pseudo-label", 0.05), ("vae", 0.1), ("cut-paste", 0.02))
             for r, v in enumerate(up)]
    _, comps = summarise_cells(cells, resolve_plan(["real", "pseudo-label", "vae", "cut-paste"], None)[0])
    primary = [c for c in comps if c["family"] == "primary"]
    assert sorted((c["arm"], c["baseline"]) for c in primary) == [
        ("vae", "cut-paste"), ("vae", "pseudo-label"), ("vae", "real")]
    assert all(c["p_holm"] == pytest.approx(3 * 2 / 128) for c in primary)  # Holm over the three, all one sign


def test_sources_follow_the_order_the_arms_name_them():
    # a method named only in --arms, listed before its variants, is the one their shared fit is credited to
    variants = {"vq-pool": {"method": "vqvae2", "set": {"transplant": "pool"}},
                "vq-ok": {"method": "vqvae2", "classes": ["ok"]}}
    _, sources = resolve_plan(["real", "vqvae2", "vq-ok", "vq-pool"], None, variants)
    assert list(sources) == ["vqvae2", "vq-ok", "vq-pool"]
    _, sources = resolve_plan(["real", "vq-pool", "vqvae2"], None, variants)
    assert list(sources) == ["vq-pool", "vqvae2"]  # vq-ok is not run: no source
