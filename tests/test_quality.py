"""Label fidelity and the quality gate (lagaug.core.defaults.quality): the per-image scores, the gate's
verdicts with reasons, how synthesize() keeps or removes dropped images, and the loop's record."""

from __future__ import annotations

import json

import pytest
import torch

from lagaug import hookimpl
from lagaug.core.contract.method import Latents, StageContext, Synthesis
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data import ImageSet
from lagaug.core.defaults.quality import GateConfig, lagaug_filter_synthesized, score, summarize
from lagaug.core.errors import ConfigError
from lagaug.core.run.loop import AugmentConfig, run_augment
from lagaug.core.run.pipeline import REJECTED, synthesize, verdict_reasons
from lagaug.core.store.synthetic import read_synthetic, write_synthetic


class Named:
    class_names = ["ok", "defect"]


def pool_of(images: torch.Tensor) -> ImageSet:
    return ImageSet(images=(images * 255).round().to(torch.uint8), labels=torch.tensor([0, 1, 1][: len(images)]),
                    class_names=["ok", "defect"], ids=[f"p/{i}" for i in range(len(images))])


def brightness_classifier(images: torch.Tensor) -> torch.Tensor:
    """'defect' is bright: p(defect) = mean brightness."""
    p = images.float().flatten(1).mean(1).clamp(0, 1)
    return torch.stack([1 - p, p], 1)


@pytest.fixture
def batch():
    """Three pool images; four synthetic ones: a bright defect (wins), a dark defect (loses), a copy
    of its source (a near-duplicate) and a soft 50/50 mix."""
    src = torch.stack([torch.full((1, 4, 4), v) for v in (0.1, 0.9, 0.8)])
    images = torch.stack([torch.full((1, 4, 4), v) for v in (0.85, 0.2, 0.8, 0.6)])
    soft = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
    synth = Synthesis(images=images, soft=soft, source=torch.tensor([1, 1, 2, 0]))
    pool = pool_of(src)
    synth.images[2] = pool.float_images([2])[0]
    ctx = StageContext(generator=torch.Generator(), pool=pool, classify=brightness_classifier)
    return synth, ctx


def test_scores_are_the_intended_class_probability_and_the_distance_to_the_source(batch):
    synth, ctx = batch
    score(synth, ctx)
    m = synth.metrics
    assert torch.allclose(m["label_fidelity"], torch.tensor([0.85, 0.2, 0.8, 0.5]), atol=1e-6)
    assert m["class_wins"].tolist() == [1.0, 0.0, 1.0, 0.0]  # the 50/50 mix intends class 0 (ties: the first)
    assert m["source_distance"][2] == 0 and abs(float(m["source_distance"][0]) - abs(0.85 - 230 / 255)) < 1e-6
    # no classifier: the distance alone
    bare = Synthesis(images=synth.images, soft=synth.soft, source=synth.source)
    score(bare, StageContext(generator=torch.Generator(), pool=ctx.pool))
    assert set(bare.metrics) == {"source_distance"}


def test_the_gate_says_why_it_drops_and_is_off_by_default(batch):
    synth, ctx = batch
    score(synth, ctx)
    assert lagaug_filter_synthesized(Named(), synth, ctx) is None  # no gate in the context
    ctx.gate = GateConfig(min_distance=0.01)
    reasons = lagaug_filter_synthesized(Named(), synth, ctx)
    assert reasons[0] is None
    assert reasons[1] == "class lost: defect 0.20 < ok 0.80"
    assert reasons[2].startswith("near-duplicate of its source: distance 0.0000 < 0.01")
    assert reasons[3] == "class lost: ok 0.40 < defect 0.60"
    ctx.gate = GateConfig(label=False, min_distance=0)
    assert lagaug_filter_synthesized(Named(), synth, ctx) == [None] * 4
    with pytest.raises(ConfigError, match="--gate-distance 1.5"):
        GateConfig(min_distance=1.5)
    ctx.gate, ctx.classify = GateConfig(), None
    bare = Synthesis(images=synth.images, soft=synth.soft, source=synth.source)
    with pytest.raises(ConfigError, match="--quality-gate: no classifier"):
        lagaug_filter_synthesized(Named(), bare, ctx)


def test_summary_counts_what_passed_per_class(batch):
    synth, ctx = batch
    score(synth, ctx)
    ctx.gate = GateConfig()
    reasons = lagaug_filter_synthesized(Named(), synth, ctx)
    synth.dropped = torch.tensor([r is not None for r in reasons])
    synth.reasons = reasons
    s = summarize(synth, ["ok", "defect"], classes=[1])
    assert (s["made"], s["kept"], s["dropped"]) == (4, 1, 3)
    assert s["dropped_by_reason"] == {"class lost": 2, "near-duplicate of its source": 1}
    assert s["by_class"] == {"defect": {"made": 3, "passed": 1, "class_wins_mean": round(2 / 3, 6),
                                        "label_fidelity_mean": round((0.85 + 0.2 + 0.8) / 3, 6)}}
    assert s["class_wins_mean"] == 0.5


class Vetoes:
    """A third-party filter: a bool mask that drops the first image."""

    @hookimpl
    def lagaug_filter_synthesized(self, method, synthesis, context):
        keep = torch.ones(len(synthesis), dtype=torch.bool)
        keep[0] = False
        return keep


def test_synthesize_keeps_dropped_images_with_their_reasons(plugins, tmp_path):
    from lagaug.core.run.generators import make_method

    pm = make_plugin_manager(extra_plugins=[("vetoes", Vetoes())])
    method = make_method("jitter", (1, 4, 4), ["ok", "defect"], {"sigma": "0"}, plugins=pm)
    images = torch.stack([torch.full((1, 4, 4), v) for v in (0.1, 0.9, 0.2)])
    pool = pool_of(images)
    soft = torch.nn.functional.one_hot(pool.labels, 2).float()

    def ctx(gate):
        return StageContext(generator=torch.Generator(), pool=pool, batch_index=torch.arange(3),
                            classify=brightness_classifier, gate=gate)

    kept = synthesize(pm, method, pool.float_images(), soft, ctx(None))
    assert len(kept) == 2 and kept.dropped.tolist() == [False, False]  # removed, as before
    full = synthesize(pm, method, pool.float_images(), soft, ctx(GateConfig()), keep_dropped=True)
    assert full.dropped.tolist() == [True, True, True]
    assert full.reasons[0].startswith(REJECTED + "; near-duplicate")  # sigma 0: copies
    assert "class lost: defect" in full.reasons[2]  # dark, labelled defect
    assert set(full.metrics) >= {"label_fidelity", "class_wins", "source_distance"}
    # recorded, written, and left out of training
    lines = write_synthetic(tmp_path, "s", full, pool, method="jitter", seed=0, id_prefix="s")
    assert [line["dropped"] for line in lines] == [True, True, True] and all(line["reason"] for line in lines)
    assert all((tmp_path / line["file"]).exists() for line in lines)
    assert read_synthetic(tmp_path, lines, pool) is None
    # no filter gave a verdict: nothing about dropping is recorded
    plain = synthesize(make_plugin_manager(), method, pool.float_images(), soft,
                       StageContext(generator=torch.Generator(), pool=pool, batch_index=torch.arange(3)))
    assert plain.dropped is None and "dropped" not in write_synthetic(tmp_path, "t", plain, pool, method="j",
                                                                       seed=0, id_prefix="t")[0]
    assert verdict_reasons([None, "why"], 2) == [None, "why"]
    with pytest.raises(ValueError, match="2 entries for 3 images"):
        verdict_reasons([True, False], 3)


def test_the_loop_records_label_fidelity_and_the_gate(example_plugin, learn_npz, tmp_path):
    from lagaug.cli.render import quality_lines

    base = dict(method="jitter", hard_k=3, iterations=1, variants=2, data=str(learn_npz), image_size=16,
                ensemble=1, epochs=2, seed=3, classes=["spot"])
    off = run_augment(AugmentConfig(**base, out=str(tmp_path / "off")), plugins=make_plugin_manager())
    line = json.loads((tmp_path / "off" / "manifest.jsonl").read_text().splitlines()[0])
    assert 0 <= line["label_fidelity"] <= 1 and line["class_wins"] in (0, 1) and "dropped" not in line
    q = off.rows[1]["synthetic_quality"]
    assert q["made"] == 6 and q["kept"] == 6 and not q["gate"] and 0 <= q["val_class_wins_mean"] <= 1
    assert q["classifier"] == "iteration 0 ensemble"

    # jitter sigma 0.001 makes near-copies: the gate drops every one, and nothing joins
    out = tmp_path / "on"
    on = run_augment(AugmentConfig(**base, set={"sigma": "0.001"}, quality_gate=True, out=str(out)),
                     plugins=make_plugin_manager())
    lines = [json.loads(x) for x in (out / "synthetic" / "it001" / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(x["dropped"] and "near-duplicate" in x["reason"] for x in lines)
    assert all((out / x["file"]).exists() for x in lines)
    assert on.rows[1]["added"] == 0 and on.rows[1]["train_size"] == on.rows[0]["train_size"]
    q = json.loads((out / "synthetic" / "it001" / "quality.json").read_text())
    assert {k: q["by_class"]["spot"][k] for k in ("made", "passed")} == {"made": 6, "passed": 0}
    assert q["dropped_by_reason"]["near-duplicate of its source"] == 6
    text = quality_lines(on.rows)[0]
    assert text.startswith("round 1: 6 made") and "spot: 0 of 6 passed" in text and "spot validation images" in text

    # killed before round 1 was written: the resumed run scores with iteration 0's saved ensemble
    first = (out / "synthetic" / "it001" / "manifest.jsonl").read_text()
    (out / "synthetic" / "it001" / "manifest.jsonl").unlink()
    (out / "iterations" / "it001" / "metrics.json").unlink()
    run_augment(AugmentConfig(**base, set={"sigma": "0.001"}, quality_gate=True, out=str(out)),
                plugins=make_plugin_manager(), resume=True)
    assert (out / "synthetic" / "it001" / "manifest.jsonl").read_text() == first


class HalfPlugin:
    """``half``: every other image keeps its source's band (plus visible noise), the rest move the
    band to the next class's rows but keep the source's label — images the gate must drop."""

    @hookimpl
    def lagaug_register_methods(self, register):
        from test_compare import FakeMethod

        class HalfMethod(FakeMethod):
            name = "half"

            def resample(self, latents, ctx):
                rows = latents.repeat(ctx.variants)
                x = rows.codes["x"].clone()
                for j, c in enumerate(rows.soft.argmax(1).tolist()):
                    if j % 2:  # the band of class c+1: the label lies
                        x[j, 0, 2:14, :] = x[j, 0, 2:14, :].clamp(max=0.3)
                        x[j, 0, 2 + 4 * ((c + 1) % 3): 6 + 4 * ((c + 1) % 3), :] += 0.6
                noise = torch.rand(x.shape, generator=ctx.generator) * 0.1
                return Latents({"x": (x + noise).clamp(0, 1)}, rows.source, rows.soft)

        register(HalfMethod)


def test_compare_gate_arm_trains_on_what_the_gate_kept(tmp_path):
    """compare's METHOD+gate arm: the repeat's images judged by a reference classifier trained on
    the repeat's real images; the gated arm adds only the kept ones and is compared with METHOD."""
    from test_compare import FakePlugin, image_set

    from lagaug.core.compare import CompareConfig, run_compare
    from lagaug.core.data import DataSplits
    from lagaug.core.errors import DataError

    pm = make_plugin_manager(extra_plugins=[("fake", FakePlugin()), ("half", HalfPlugin())])
    splits = DataSplits(image_set(60, "train", 0), image_set(0, "val", 1), image_set(30, "test", 2))
    ens = dict(classifier="garay_cnn_small", members=1, epochs=3, batch_size=16)
    result = run_compare(CompareConfig(method="half", arms=["real", "method", "method+gate", "duplicate"], repeats=1,
                                       train_size=24, out=str(tmp_path / "run"), ensemble=ens),
                         splits=splits, plugins=pm)
    repeat = tmp_path / "run" / "repeats" / "r000"
    lines = [json.loads(x) for x in (repeat / "synthetic" / "manifest.jsonl").read_text().splitlines()]
    kept = sum(not x["dropped"] for x in lines)
    assert all("label_fidelity" in x for x in lines) and (repeat / "reference").is_dir()
    cells = {c["arm"]: c for c in result.cells}
    assert cells["half"]["added"] == len(lines) == cells["half"]["real"] and cells["half+gate"]["added"] == kept
    lying = [x for i, x in enumerate(lines) if i % 2]
    assert all(x["dropped"] and "class lost" in x["reason"] for x in lying)  # every moved band is caught
    assert kept >= len(lines) // 2 - 2, kept  # and nearly every honest image kept
    quality = json.loads((repeat / "synthesis.json").read_text())["quality"]
    assert quality["made"] == len(lines) and quality["kept"] == kept
    pairs = {(c["arm"], c["baseline"]): c["family"] for c in result.comparisons if c["metric"] == "f1"}
    assert pairs[("half+gate", "half")] == "primary" and ("half+gate", "duplicate") in pairs
    # copies are all near-duplicates: the gated arm would add nothing
    with pytest.raises(DataError, match="the quality gate dropped every synthetic image"):
        run_compare(CompareConfig(method="copy", arms=["real", "copy+gate"], repeats=1, train_size=24,
                                  out=str(tmp_path / "copy"), ensemble=ens), splits=splits, plugins=pm)


def test_validation_reference_compares_each_class_with_its_own_validation_images(batch):
    from lagaug.core.defaults.quality import MIN_REFERENCE, validation_reference

    synth, ctx = batch
    score(synth, ctx)
    s = summarize(synth, ["ok", "defect"])
    assert s["by_class"]["defect"] == {"made": 3, "passed": 3, "class_wins_mean": round(2 / 3, 6),
                                       "label_fidelity_mean": round((0.85 + 0.2 + 0.8) / 3, 6)}
    # validation: 12 bright defects (all win), 2 ok of which one is bright (loses)
    val = torch.tensor([0.9] * 12 + [0.1, 0.7])
    probs = brightness_classifier(val.reshape(-1, 1, 1, 1))
    targets = torch.nn.functional.one_hot(torch.tensor([1] * 12 + [0, 0]), 2).float()
    validation_reference(s, probs, targets, ["ok", "defect"])
    defect, ok = s["by_class"]["defect"], s["by_class"]["ok"]
    assert (defect["val_images"], defect["val_class_wins_mean"], defect["val_too_few"]) == (12, 1.0, False)
    assert defect["val_label_fidelity_mean"] == pytest.approx(0.9, abs=1e-6)
    assert (ok["val_images"], ok["val_class_wins_mean"], ok["val_too_few"]) == (2, 0.5, True) and MIN_REFERENCE == 10
    assert ok["val_label_fidelity_mean"] == pytest.approx((0.9 + 0.3) / 2, abs=1e-6)
    assert s["val_class_wins_mean"] == round(13 / 14, 6) and s["val_images"] == 14
    assert s["val_class_wins_matched"] == round((3 * 1.0 + 1 * 0.5) / 4, 6)  # weighted by the images made


def test_source_reference_reads_each_class_beside_the_images_it_was_made_from(batch):
    from lagaug.core.defaults.quality import source_reference

    synth, ctx = batch
    score(synth, ctx)
    s = summarize(synth, ["ok", "defect"])
    pool = ctx.pool.float_images()  # brightness 0.1, 0.9, 0.8: labelled ok, defect, defect
    targets = torch.nn.functional.one_hot(torch.tensor([0, 1, 1]), 2).float()
    targets[0] = torch.tensor([0.0, 1.0])  # pool row 0 is labelled defect: dark, so its class loses
    source_reference(s, synth, brightness_classifier(pool), targets, ["ok", "defect"])
    defect, ok = s["by_class"]["defect"], s["by_class"]["ok"]
    # the defect images came from rows 1, 1, 2 (bright: their class wins); the 50/50 mix (intended ok) from row 0
    assert (defect["src_class_wins_mean"], ok["src_class_wins_mean"]) == (1.0, 0.0)
    assert defect["src_label_fidelity_mean"] == pytest.approx((0.9 + 0.9 + 0.8) / 3, abs=0.005)  # 8-bit pixels
    assert ok["src_label_fidelity_mean"] == pytest.approx(0.1, abs=0.005)


class LoseOneClass:
    """Overrides ``lagaug_decode``: images meant as ``line`` become the training image the ensemble
    is surest is ``ok`` (so they lose), ``spot`` ones the one it is surest is ``spot`` (they win)."""

    @hookimpl
    def lagaug_decode(self, method, latents, context):
        synth = method.decode(latents, context)
        pool = context.pool
        probs = torch.as_tensor(context.classify(pool.float_images())).float()
        names = pool.class_names
        surest = {c: int(torch.where(pool.labels == c, probs[:, c], -1.0).argmax()) for c in range(len(names))}
        want = synth.soft.argmax(1)
        for j in range(len(synth)):
            target = names.index("ok") if names[int(want[j])] == "line" else int(want[j])
            synth.images[j] = pool.float_images([surest[target]])[0]
        return synth


def test_the_loop_compares_each_class_with_the_same_class_validation_images(example_plugin, learn_npz, tmp_path):
    from lagaug.cli.render import quality_lines

    pm = make_plugin_manager(extra_plugins=[("lose-one-class", LoseOneClass())])
    out = tmp_path / "run"
    result = run_augment(AugmentConfig(method="jitter", hard_k=24, iterations=1, data=str(learn_npz), image_size=16,
                                       ensemble=1, epochs=2, seed=3, classes=["spot", "line"], out=str(out)),
                         plugins=pm)
    q = json.loads((out / "synthetic" / "it001" / "quality.json").read_text())
    assert result.rows[1]["synthetic_quality"] == q
    lines = [json.loads(x) for x in (out / "synthetic" / "it001" / "manifest.jsonl").read_text().splitlines()]
    val_counts = json.loads((out / "data.json").read_text())["counts"]["val"]
    for name in ("spot", "line"):
        mine = [x for x in lines if x["label"] == name]
        c = q["by_class"][name]
        assert c["made"] == len(mine) > 0
        assert c["class_wins_mean"] == round(sum(x["class_wins"] for x in mine) / len(mine), 6)
        assert c["label_fidelity_mean"] == pytest.approx(sum(x["label_fidelity"] for x in mine) / len(mine), abs=1e-6)
        assert c["val_images"] == val_counts[name] == 3 and c["val_too_few"] is True
        assert 0 <= c["val_class_wins_mean"] <= 1 and 0 <= c["val_label_fidelity_mean"] <= 1
    assert q["by_class"]["line"]["class_wins_mean"] == 0.0 and q["by_class"]["spot"]["class_wins_mean"] == 1.0
    assert q["val_images"] == sum(val_counts.values())
    made = {n: q["by_class"][n]["made"] for n in ("spot", "line")}
    assert q["val_class_wins_matched"] == pytest.approx(
        sum(made[n] * q["by_class"][n]["val_class_wins_mean"] for n in made) / sum(made.values()), abs=1e-6)
    (text,) = quality_lines(result.rows)
    line = q["by_class"]["line"]
    assert (f"line: 0% of {made['line']} (line validation images: {100 * line['val_class_wins_mean']:.0f}% of 3, "
            f"too few to be a reference), mean label fidelity {line['label_fidelity_mean']:.2f} "
            f"(validation {line['val_label_fidelity_mean']:.2f})") in text
    assert f"spot: 100% of {made['spot']} (spot validation images: " in text
    assert 0 <= line["src_class_wins_mean"] <= 1 and 0 <= line["src_label_fidelity_mean"] <= 1
    assert (f"the images they were made from: {100 * line['src_class_wins_mean']:.0f}%, fidelity "
            f"{line['src_label_fidelity_mean']:.2f}") in text
