"""The contract every generator method must keep, as one pytest class to subclass.

Example (a third-party plugin's test module)::

    from lagaug.testing import MethodContract

    class TestJitter(MethodContract):
        method = "jitter"
        overrides = {"sigma": "0.1"}

Every test gets a fitted method from a class-scoped fixture (fitted once, on
:func:`lagaug.testing.learnable_set` images of ``image_shape``) and the plugin manager from the
``plugins`` fixture (override it to add plugins that are not installed). What is checked:

* encode → resample → decode returns ``variants`` images per source, in ``[0, 1]``, with soft
  labels that are distributions and provenance that points into the pool;
* soft labels follow the sources: the weighted mix of the sources' labels (opt out with
  ``soft_from_sources = False``);
* the same seed gives the same images, another seed other images (``random = False`` opts out);
* randomness comes only from the context's generator: the global RNG neither matters nor moves;
* a saved and reloaded generator makes identical images;
* images smaller than the method accepts are refused with a one-line ``ConfigError``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from lagaug.core.contract.method import StageContext, Synthesis
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.core.data.dataset import DataSplits
from lagaug.core.errors import ConfigError
from lagaug.core.run.generators import fit_generator, load_generator
from lagaug.core.run.pipeline import synthesize
from lagaug.testing.data import learnable_set


class MethodContract:
    """Subclass with ``method`` (a registered name) and ``overrides`` (a tiny ``--set`` config)."""

    method: ClassVar[str] = ""
    overrides: ClassVar[dict[str, Any]] = {}
    options: ClassVar[dict[str, Any]] = {}
    image_size: ClassVar[int] = 16
    classes: ClassVar[int] = 2
    n_train: ClassVar[int] = 24
    variants: ClassVar[int] = 2
    random: ClassVar[bool] = True
    soft_from_sources: ClassVar[bool] = True

    # -- fixtures ------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def plugins(cls):
        return make_plugin_manager()

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        parts = {s: learnable_set(n, 11, s, cls.image_size, classes=cls.classes)
                 for s, n in (("train", cls.n_train), ("val", 8), ("test", 8))}
        return DataSplits(parts["train"], parts["val"], parts["test"])

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, plugins, data):
        return fit_generator(cls.method, data, overrides=dict(cls.overrides), seed=5, plugins=plugins)

    def synthesize(self, plugins, method, data, seed: int = 0, batch=(0, 3, 5)) -> Synthesis:
        """Synthesize from rows ``batch`` of the training set, the whole training set as pool."""
        from lagaug.core.config import resolve_options

        _, options = resolve_options(method.config, dict(self.options))
        train = data.train
        rows = torch.tensor(batch)
        ctx = StageContext(generator=torch.Generator().manual_seed(seed), variants=self.variants,
                           options=options, pool=train, batch_index=rows)
        return synthesize(plugins, method, train.float_images(rows), train.targets()[rows], ctx)

    # -- the contract --------------------------------------------------------------------------
    def test_stages_return_variants_per_source_with_valid_provenance(self, plugins, fitted, data):
        out = self.synthesize(plugins, fitted, data)
        n = 3 * self.variants
        assert tuple(out.images.shape) == (n, *fitted.image_shape), (
            f"decode must return ctx.variants ({self.variants}) images per source image of the method's shape: "
            f"expected {(n, *fitted.image_shape)}, got {tuple(out.images.shape)}")
        assert out.images.dtype == torch.float32, f"images must be float32, got {out.images.dtype}"
        assert float(out.images.min()) >= 0.0 and float(out.images.max()) <= 1.0, (
            f"images must lie in [0, 1], got [{float(out.images.min()):.3g}, {float(out.images.max()):.3g}]; clamp "
            "them in decode")
        assert tuple(out.soft.shape) == (n, self.classes), (
            f"soft labels must be (N, K) = {(n, self.classes)}, got {tuple(out.soft.shape)}")
        assert torch.allclose(out.soft.sum(1), torch.ones(n), atol=1e-5) and bool((out.soft >= 0).all()), (
            "every soft label must be a distribution over the classes (non-negative, summing to 1)")
        assert out.source.shape[0] == n and out.weight.shape == out.source.shape, (
            f"source and weight must have one row per image: source {tuple(out.source.shape)}, weight "
            f"{tuple(out.weight.shape)}, images {n}")
        assert bool((out.source < len(data.train)).all()) and bool((out.source >= -1).all()), (
            "sources must be rows of ctx.pool (or -1 padding); encode should set source=ctx.batch_rows(len(images))")
        assert set(out.primary.tolist()) <= {0, 3, 5}, (
            f"the primary (first) source of every image must be a row of the encoded batch (ctx.batch_rows(n) = "
            f"[0, 3, 5]), got {sorted(set(out.primary.tolist()))}; set source=ctx.batch_rows(len(images)) in encode")
        assert sorted(out.primary.tolist()) == sorted([0, 3, 5] * self.variants), (
            f"every batch image must be the primary source of ctx.variants ({self.variants}) images (use "
            f"latents.repeat(ctx.variants) in resample), got primaries {sorted(out.primary.tolist())}")

    def test_soft_labels_follow_the_sources(self, plugins, fitted, data):
        if not self.soft_from_sources:
            pytest.skip("this method sets labels by its own rule")
        out = self.synthesize(plugins, fitted, data)
        onehot = data.train.targets()
        for j in range(len(out)):
            rows, weights = out.source[j], out.weight[j]
            used = rows >= 0
            expected = (weights[used, None] * onehot[rows[used]]).sum(0) / weights[used].sum()
            assert torch.allclose(out.soft[j], expected, atol=1e-5), (
                f"image {j}: its soft label {out.soft[j].tolist()} must be the weighted mix of its sources' labels "
                f"{expected.tolist()} (or set soft_from_sources = False for a method with its own labelling rule)")

    def test_same_seed_same_images_other_seed_other_images(self, plugins, fitted, data):
        a = self.synthesize(plugins, fitted, data, seed=1)
        b = self.synthesize(plugins, fitted, data, seed=1)
        assert torch.equal(a.images, b.images) and torch.equal(a.source, b.source), (
            "the same seed must give the same images and sources: draw every random number from ctx.generator")
        if self.random:
            c = self.synthesize(plugins, fitted, data, seed=2)
            assert not torch.equal(a.images, c.images), (
                "another seed must give other images: draw from ctx.generator (or set random = False for a "
                "method that draws nothing)")

    def test_randomness_comes_only_from_the_context_generator(self, plugins, fitted, data):
        torch.manual_seed(123)
        before = torch.get_rng_state()
        a = self.synthesize(plugins, fitted, data, seed=4)
        assert torch.equal(torch.get_rng_state(), before), (
            "the global RNG moved: draw with generator=ctx.generator (torch.randn(..., generator=ctx.generator)), "
            "never torch's global generator")
        torch.manual_seed(999)
        b = self.synthesize(plugins, fitted, data, seed=4)
        assert torch.equal(a.images, b.images), (
            "the global RNG changed the images: draw every random number from ctx.generator")

    def test_save_load_round_trip_makes_identical_images(self, plugins, fitted, data, tmp_path):
        fitted.save(tmp_path / "gen")
        loaded = load_generator(tmp_path / "gen", expect_method=self.method, plugins=plugins)
        assert type(loaded) is type(fitted) and loaded.config == fitted.config, (
            f"a saved generator must load as the same class with the same config: saved {fitted.config!r}, "
            f"loaded {loaded.config!r}")
        a = self.synthesize(plugins, fitted, data, seed=3)
        b = self.synthesize(plugins, loaded, data, seed=3)
        assert torch.equal(a.images, b.images), (
            "a saved and reloaded generator must make identical images: return every network from modules() and "
            "any other state from extra_state() / load_extra_state()")

    def test_too_small_images_are_refused(self, plugins):
        cls = plugins.get_method(self.method)
        side = cls.min_image_size - 1
        with pytest.raises(ConfigError, match=rf"method '{self.method}' needs images of at least"):
            cls.check_image_shape((1, side, side))
        with pytest.raises(ConfigError, match=r"raise --image-size"):
            cls(cls.default_config(), (1, side, side), ["a", "b"])
