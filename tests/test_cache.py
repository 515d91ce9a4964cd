"""No work done twice: generator fits and baseline ensembles come from the cache when their inputs
are the same; --refit, a changed input and a damaged entry compute them again; --iterations 0 fits
nothing; a round that adds no image reuses the previous ensemble."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from test_loop import config

from lagaug import hookimpl
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.run.loop import run_augment
from lagaug.core.store.cache import CacheWarning


class Counting:
    """Counts generator fits and member trainings (patched into the example method and the trainer)."""

    def __init__(self, monkeypatch):
        from lagaug_example_plugin.method import JitterMethod

        import lagaug.core.classifier.ensemble as ensemble

        self.fits = self.members = 0
        fit, job = JitterMethod.fit, ensemble.member_job

        def counted_fit(method, *a, **k):
            self.fits += 1
            return fit(method, *a, **k)

        def counted_job(*a, **k):
            self.members += 1
            return job(*a, **k)

        monkeypatch.setattr(JitterMethod, "fit", counted_fit)
        monkeypatch.setattr(ensemble, "member_job", counted_job)


def figures(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_a_second_run_reuses_the_fit_and_the_baseline_and_says_so(example_plugin, cache_dir, learn_npz, tmp_path,
                                                                   monkeypatch):
    from lagaug.core.progress import Progress

    count = Counting(monkeypatch)
    first = run_augment(config(learn_npz, tmp_path / "a", iterations=1), plugins=make_plugin_manager())
    assert (count.fits, count.members) == (1, 4)  # one fit; two members at iterations 0 and 1
    said = []
    monkeypatch.setattr(Progress, "log", lambda self, message: said.append(message))
    second = run_augment(config(learn_npz, tmp_path / "b", iterations=1), plugins=make_plugin_manager())
    assert (count.fits, count.members) == (1, 6)  # no fit, no baseline member: only iteration 1's
    assert figures(second.rows) == figures(first.rows)  # the same figures, to the last digit
    zero = second.rows[0]["seconds"]
    assert zero["generator_reused"] is True and zero["ensemble_reused"].startswith("cache ")
    assert any(m.startswith("generator: reused the cached copy") and "--refit" in m for m in said)
    assert any(m.startswith("baseline: reused the cached copy") for m in said)
    assert (tmp_path / "b/generator/generator.json").read_bytes() == (tmp_path / "a/generator/generator.json").read_bytes()
    assert len(list((tmp_path / "b/iterations/it000/ensemble").glob("member_*.safetensors"))) == 2
    a = json.loads((tmp_path / "a/iterations/it000/metrics.json").read_text())
    b = json.loads((tmp_path / "b/iterations/it000/metrics.json").read_text())
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}


def test_changed_inputs_and_refit_compute_again(example_plugin, cache_dir, learn_npz, tmp_path, monkeypatch):
    count = Counting(monkeypatch)
    run_augment(config(learn_npz, tmp_path / "a", iterations=1), plugins=make_plugin_manager())
    run_augment(config(learn_npz, tmp_path / "b", iterations=1, set={"sigma": 0.2}), plugins=make_plugin_manager())
    assert (count.fits, count.members) == (2, 6)  # another method config: a new fit; the baseline is the same
    run_augment(config(learn_npz, tmp_path / "c", iterations=1, seed=5), plugins=make_plugin_manager())
    assert (count.fits, count.members) == (3, 10)  # another seed: everything again
    run_augment(config(learn_npz, tmp_path / "d", iterations=1, split_seed=1), plugins=make_plugin_manager())
    assert (count.fits, count.members) == (4, 14)  # another split: other data
    run_augment(config(learn_npz, tmp_path / "e", iterations=1, refit=True), plugins=make_plugin_manager())
    assert (count.fits, count.members) == (5, 18)  # --refit


def test_a_damaged_cache_entry_is_computed_again_with_a_warning(example_plugin, cache_dir, learn_npz, tmp_path,
                                                                 monkeypatch):
    count = Counting(monkeypatch)
    run_augment(config(learn_npz, tmp_path / "a", iterations=1), plugins=make_plugin_manager())
    for weights in (cache_dir / "generator").rglob("weights.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    with pytest.warns(CacheWarning, match=r"the cached generator .* cannot be used \(CheckpointError: .*computing it again"):
        run_augment(config(learn_npz, tmp_path / "b", iterations=1), plugins=make_plugin_manager())
    assert count.fits == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # the entry was replaced by a good one
        run_augment(config(learn_npz, tmp_path / "c", iterations=1), plugins=make_plugin_manager())
    assert count.fits == 2


def test_iterations_0_fits_no_generator(example_plugin, learn_npz, tmp_path, monkeypatch):
    count = Counting(monkeypatch)
    rows = run_augment(config(learn_npz, tmp_path / "a", iterations=0), plugins=make_plugin_manager()).rows
    assert count.fits == 0 and len(rows) == 1
    assert not (tmp_path / "a" / "generator").exists()


class DropAll:
    @hookimpl
    def lagaug_filter_synthesized(self, method, synthesis, context):
        return torch.zeros(len(synthesis), dtype=torch.bool)


def test_a_round_that_adds_nothing_reuses_the_previous_ensemble(example_plugin, learn_npz, tmp_path, monkeypatch):
    count = Counting(monkeypatch)
    rows = run_augment(config(learn_npz, tmp_path / "a", iterations=2),
                       plugins=make_plugin_manager(extra_plugins=[("drop", DropAll())])).rows
    assert [r["added"] for r in rows] == [0, 0, 0]
    assert count.members == 2  # iteration 0 only: 1 and 2 train on the same images with the same seeds
    assert rows[1]["seconds"]["ensemble_reused"] == "iteration 0"
    assert rows[1]["per_member"] == rows[0]["per_member"] and rows[2]["per_member"] == rows[0]["per_member"]
    assert rows[2]["auc_delta"] == 0.0
