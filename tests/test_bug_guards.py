"""End-to-end guards against bugs the unit tests would let through: the paired change of a later
iteration taken against the wrong reference, the data split moving with ``--seed``, and the
quality gate judging by label fidelity instead of whether the intended class wins."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.run.loop import AugmentConfig, run_augment


def metrics(out, it: int) -> dict:
    return json.loads((out / "iterations" / f"it{it:03d}" / "metrics.json").read_text())


def test_every_iteration_is_paired_with_the_baseline_not_the_previous_round(example_plugin, learn_npz, tmp_path):
    out = tmp_path / "run"
    run_augment(AugmentConfig(method="jitter", hard_k=6, iterations=2, variants=2, data=str(learn_npz), image_size=16,
                              ensemble=2, epochs=2, seed=3, out=str(out)), plugins=make_plugin_manager())
    base, first, second = (metrics(out, it) for it in (0, 1, 2))
    tells_apart = False
    for key in ("auc", "f1", "accuracy"):
        now = np.array([m[key] for m in second["per_member"]])
        vs_base = now - np.array([m[key] for m in base["per_member"]])
        vs_first = now - np.array([m[key] for m in first["per_member"]])
        assert second[f"{key}_delta"] == pytest.approx(vs_base.mean(), abs=1e-9)
        tells_apart |= abs(vs_base.mean() - vs_first.mean()) > 1e-6
    assert tells_apart  # iteration 1 differs from the baseline, so the wrong reference would show


def train_ids(out) -> list[str]:
    with open(out / "iterations" / "it000" / "scores.csv", newline="") as fh:
        return sorted(row["id"] for row in csv.DictReader(fh))


def test_the_loop_carves_validation_by_split_seed_not_by_seed(example_plugin, learn_npz, tmp_path):
    def run(name: str, seed: int, split_seed: int) -> list[str]:
        out = tmp_path / name
        run_augment(AugmentConfig(method="jitter", iterations=1, hard_k=1, data=str(learn_npz), image_size=16, ensemble=1,
                                  epochs=1, seed=seed, split_seed=split_seed, out=str(out)),
                    plugins=make_plugin_manager())
        return train_ids(out)

    first = run("a", seed=0, split_seed=0)
    assert len(first) == 72  # 90 training images, a fifth of each class carved off for validation
    assert run("b", seed=7, split_seed=0) == first  # another --seed: the same training images
    assert run("c", seed=0, split_seed=5) != first  # another --split-seed: another carve


def test_the_gate_keeps_an_image_whose_class_wins_below_half_its_probability(example_plugin, learn_npz, tmp_path):
    # three classes and a weakly trained ensemble: some images win with a probability below 0.5. A gate
    # that asked "label fidelity >= 0.5" instead of "does the intended class win" would drop them.
    out = tmp_path / "run"
    run_augment(AugmentConfig(method="jitter", hard_k=20, iterations=1, variants=2, data=str(learn_npz), image_size=16,
                              ensemble=1, epochs=1, seed=0, quality_gate=True, gate_distance=0.0, out=str(out)),
                plugins=make_plugin_manager())
    lines = [json.loads(x) for x in (out / "synthetic" / "it001" / "manifest.jsonl").read_text().splitlines()]
    winners_below_half = [x for x in lines if x["class_wins"] == 1 and x["label_fidelity"] < 0.5]
    assert winners_below_half, "the run made no image that tells the two rules apart"
    assert not any(x["dropped"] for x in winners_below_half)
    assert all(x["dropped"] == (x["class_wins"] == 0) for x in lines)
    assert all("class lost" in x["reason"] for x in lines if x["dropped"])
