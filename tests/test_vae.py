"""Behaviour of the ``vae`` method (Garay-Maestre et al. 2019) on tiny shape data."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from contextlib import contextmanager

import pytest
import torch

from lagaug.core.config import apply_overrides
from lagaug.core.contract.method import FitContext, GeneratorMethod, Latents, StageContext
from lagaug.core.data.dataset import ImageSet
from lagaug.core.errors import CheckpointError, ConfigError, DataError
from lagaug.core.progress import Progress
from lagaug.plugins.vae.method import VAEConfig, VAEMethod
from lagaug.plugins.vae.model import ConvVAE, kl_divergence, reconstruction_bce, vae_loss

SIZE = 16
CLASSES = ["square", "disc"]
FAST = dict(epochs=12, min_steps=0, batch_size=16, lr=3e-3, patience=0)


def shapes(n_per_class: int, seed: int, invert: bool = False) -> ImageSet:
    """Bright squares (class 0) and discs (class 1) of random size, place and brightness."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    images, labels = [], []
    for label in (0, 1):
        for _ in range(n_per_class):
            r, cy, cx, level = (torch.rand(4, generator=g) * torch.tensor([5, 3, 3, 0.4])).tolist()
            r, cy, cx = 2 + r, 6.5 + cy, 6.5 + cx
            if label == 0:
                img = (((yy - cy).abs() <= r) & ((xx - cx).abs() <= r)).float()
            else:
                img = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).float()
            img = img * (0.6 + level)
            images.append(1 - img if invert else img)
            labels.append(label)
    x = torch.stack(images)[:, None]
    return ImageSet(images=(x * 255).to(torch.uint8), labels=torch.tensor(labels), class_names=list(CLASSES),
                    ids=[f"img{i}" for i in range(len(labels))])


def new_method(**overrides) -> VAEMethod:
    return VAEMethod(VAEConfig(**{**FAST, **overrides}), (1, SIZE, SIZE), list(CLASSES))


def fit_ctx(seed: int = 0, **kw) -> FitContext:
    return FitContext(generator=torch.Generator().manual_seed(seed), progress=Progress(quiet=True), **kw)


def stage_ctx(seed: int = 0, **kw) -> StageContext:
    return StageContext(generator=torch.Generator().manual_seed(seed), progress=Progress(quiet=True), **kw)


@pytest.fixture(scope="module")
def train() -> ImageSet:
    return shapes(40, seed=1)


@pytest.fixture(scope="module")
def fitted(train) -> VAEMethod:
    method = new_method(epochs=40)
    method.fit(train, fit_ctx())
    return method


def recon_mse(method: VAEMethod, data: ImageSet) -> float:
    """Mean squared error of posterior-mean reconstructions, each image through its class VAE."""
    err = []
    for c, vae in enumerate(method.vaes):
        x = data.float_images(torch.nonzero(data.labels == c).flatten())
        err.append(((vae.reconstruct(x) - x) ** 2).mean())
    return float(torch.stack(err).mean())


# (1) it learns ----------------------------------------------------------------------------------
def class_mean_mse(data: ImageSet, means_from: ImageSet) -> float:
    """The error of 'reconstructing' every image by its class's mean training image."""
    x, ref = data.float_images(), means_from.float_images()
    return float(torch.stack([((x[data.labels == c] - ref[means_from.labels == c].mean(0)) ** 2).mean()
                              for c in range(len(CLASSES))]).mean())


def test_reconstruction_error_falls_well_below_the_untrained_model(fitted, train):
    untrained = new_method()
    held_out = shapes(10, seed=99)
    for data in (train, held_out):
        after = recon_mse(fitted, data)
        assert after < 0.6 * recon_mse(untrained, data)
        # and it encodes each image, not just its class: better than the class mean image
        assert after < 0.8 * class_mean_mse(data, train)


# (2) the loss -----------------------------------------------------------------------------------
def test_kl_is_the_closed_form_summed_over_latent_dimensions():
    mu = torch.tensor([[1.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0), math.log(0.25)], [0.0, 0.0, 0.0]])
    # 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2) per dimension, by hand:
    by_hand = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 4 - 1 - math.log(4)) + 0.5 * (4 + 0.25 - 1 + math.log(4))
    kl = kl_divergence(mu, logvar)
    assert kl.shape == (2,)
    assert kl[0].item() == pytest.approx(by_hand, rel=1e-6)
    assert kl[1].item() == pytest.approx(0.0, abs=1e-7)  # the posterior equals the prior


def test_reconstruction_is_summed_over_pixels_and_averaged_over_the_batch():
    target = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    logits = torch.zeros_like(target)  # p = 0.5 everywhere: ln 2 per pixel
    assert torch.allclose(reconstruction_bce(logits, target), torch.full((4,), 64 * math.log(2)))
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    base = vae_loss(target, logits, mu, logvar)
    assert base.reconstruction.item() == pytest.approx(64 * math.log(2), rel=1e-6)
    # twice the pixels: twice the loss; twice the images: the same loss
    wide = vae_loss(torch.cat([target, target], 3), torch.cat([logits, logits], 3), mu, logvar)
    assert wide.reconstruction.item() == pytest.approx(2 * base.reconstruction.item(), rel=1e-6)
    more = vae_loss(torch.cat([target, target]), torch.cat([logits, logits]), torch.zeros(8, 3), torch.zeros(8, 3))
    assert more.total.item() == pytest.approx(base.total.item(), rel=1e-6)
    # beta weighs the KL term
    mu = torch.ones(4, 3)
    one, two = vae_loss(target, logits, mu, logvar, 1.0), vae_loss(target, logits, mu, logvar, 2.0)
    assert one.kl.item() == pytest.approx(1.5)  # 3 dims x 0.5 * 1^2
    assert two.total.item() - one.total.item() == pytest.approx(one.kl.item(), rel=1e-5)


# (3) sampling uses sigma = exp(0.5 * logvar) -----------------------------------------------------
def test_posterior_draws_have_sigma_exp_half_logvar():
    method = new_method()
    n = 20000
    mu = torch.tensor([[1.0, -2.0, 0.0]])
    logvar = torch.tensor([[math.log(4.0), math.log(0.01), 0.0]])  # sigma = 2, 0.1, 1
    lat = Latents(codes={"mu": mu, "logvar": logvar}, source=torch.tensor([0]), soft=torch.tensor([[1.0, 0.0]]))
    z = method.resample(lat, stage_ctx(variants=n)).codes["z"]
    assert z.shape == (n, 3)
    assert torch.allclose(z.mean(0), mu[0], atol=0.05)
    assert torch.allclose(z.std(0), torch.tensor([2.0, 0.1, 1.0]), rtol=0.03)
    half = method.resample(lat, stage_ctx(variants=n, options={"posterior_scale": "0.5"})).codes["z"]
    assert torch.allclose(half.std(0), torch.tensor([1.0, 0.05, 0.5]), rtol=0.03)
    prior = method.resample(lat, stage_ctx(variants=n, options={"sampling": "prior"})).codes["z"]
    assert torch.allclose(prior.mean(0), torch.zeros(3), atol=0.05)
    assert torch.allclose(prior.std(0), torch.ones(3), rtol=0.03)


# (4) seeds --------------------------------------------------------------------------------------
def test_same_seed_same_outputs_different_seed_different(train):
    small = train.subset(list(range(0, 80, 4)))  # 10 per class
    runs = []
    for seed in (5, 5, 6):
        method = new_method(epochs=2, channels=4, hidden=16)
        method.fit(small, fit_ctx(seed))
        ctx = stage_ctx(seed, variants=2)
        lat = method.resample(method.encode(small.float_images(), small.targets(), ctx), ctx)
        runs.append((method.state_tensors(), method.decode(lat, ctx).images))
    (w1, img1), (w2, img2), (w3, img3) = runs
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert torch.equal(img1, img2)
    assert not torch.equal(img1, img3)
    assert not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_construction_does_not_touch_the_global_rng():
    state = torch.random.get_rng_state()
    ConvVAE((1, SIZE, SIZE))
    new_method()
    assert torch.equal(state, torch.random.get_rng_state())


# (5) encode / resample / decode -----------------------------------------------------------------
def test_encode_resample_decode_shapes_sources_and_labels(fitted, train):
    rows = [0, 1, 2, 40, 41, 42]
    x, soft = train.float_images(rows), train.targets()[rows]
    ctx = stage_ctx(3, variants=4)
    lat = fitted.encode(x, soft, ctx)
    assert set(lat.codes) == {"mu", "logvar"} and lat.codes["mu"].shape == (6, 3)
    assert torch.equal(lat.source, torch.arange(6)[:, None]) and torch.equal(lat.soft, soft)

    new = fitted.resample(lat, ctx)
    assert len(new) == 24 and new.codes["z"].shape == (24, 3)
    assert torch.equal(new.source, torch.arange(6).repeat_interleave(4)[:, None])
    assert new.info["sampling"] == "posterior"

    out = fitted.decode(new, ctx)
    assert out.images.shape == (24, 1, SIZE, SIZE) and out.images.dtype == torch.float32
    assert 0 <= out.images.min() and out.images.max() <= 1
    assert torch.equal(out.source, new.source)
    assert torch.equal(out.soft, soft[out.primary])  # one-hot of the source image's class
    dist = out.metrics["latent_distance"]
    assert dist.shape == (24,) and torch.allclose(dist, (new.codes["z"] - new.codes["mu"]).norm(dim=1))

    # decoding straight after encode reconstructs from the posterior mean
    recon = fitted.decode(lat, ctx)
    assert torch.allclose(recon.metrics["latent_distance"], torch.zeros(6))


def test_prior_sampling_and_sample_class(fitted, train):
    ctx = stage_ctx(4, variants=3, options={"sampling": "prior"})
    lat = fitted.encode(train.float_images([0, 45]), train.targets()[[0, 45]], ctx)
    new = fitted.resample(lat, ctx)
    assert new.info["sampling"] == "prior"
    out = fitted.decode(new, ctx)
    assert out.soft.argmax(1).tolist() == [0, 0, 0, 1, 1, 1]
    imgs = fitted.sample_class(1, 5, torch.Generator().manual_seed(0))
    assert imgs.shape == (5, 1, SIZE, SIZE) and 0 <= imgs.min() and imgs.max() <= 1
    assert torch.equal(imgs, fitted.sample_class(1, 5, torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError, match="class index 2"):
        fitted.sample_class(2, 1, torch.Generator())
    with pytest.raises(ConfigError, match="sampling must be one of posterior, prior"):
        fitted.resample(lat, stage_ctx(options={"sampling": "nearby"}))


def test_bad_inputs_to_stages(fitted, train):
    with pytest.raises(ConfigError, match="no fitted VAE"):
        new_method().encode(train.float_images([0]), train.targets()[[0]], stage_ctx())
    with pytest.raises(ConfigError, match="3x16x16"):
        fitted.encode(torch.rand(2, 3, SIZE, SIZE), torch.eye(2), stage_ctx())


# (6) save / load --------------------------------------------------------------------------------
class OtherMethod(GeneratorMethod):
    name = "other"

    @dataclasses.dataclass
    class Config:
        size: int = 1


def test_save_load_round_trip_gives_identical_decodes(fitted, train, tmp_path):
    fitted.save(tmp_path / "gen")
    loaded = VAEMethod.load(tmp_path / "gen")
    assert loaded.config == fitted.config and loaded.fitted == [True, True]
    assert loaded.extra_state() == fitted.extra_state()
    x, soft = train.float_images([0, 50]), train.targets()[[0, 50]]
    for method in (fitted, loaded):
        ctx = stage_ctx(7, variants=2)
        method.out = method.decode(method.resample(method.encode(x, soft, ctx), ctx), ctx).images
    assert torch.equal(fitted.out, loaded.out)


def test_loading_another_methods_generator_raises(tmp_path):
    OtherMethod(OtherMethod.Config(), (1, SIZE, SIZE), list(CLASSES)).save(tmp_path / "other")
    with pytest.raises(CheckpointError, match="saved by method 'other', not 'vae'"):
        VAEMethod.load(tmp_path / "other")


# (7) bad sizes, bad configs, small classes ------------------------------------------------------
def test_images_below_the_minimum_size_are_refused():
    with pytest.raises(ConfigError, match=r"at least 16x16 pixels, got 12x12"):
        VAEMethod(VAEConfig(), (1, 12, 12), list(CLASSES))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 30, 30), (3, 64, 64)])
def test_any_size_from_16_round_trips_through_the_model(shape):
    vae = ConvVAE(shape, latent_dim=3)
    x = torch.rand(2, *shape)
    mu, _ = vae.encode(x)
    assert mu.shape == (2, 3) and vae.decode(mu).shape == (2, *shape)


def test_a_class_with_too_few_images_is_named(train):
    few = train.subset(list(range(40)) + [40, 41])
    with pytest.raises(DataError, match=r"class 'disc' has 2;"):
        new_method(min_class_images=3).fit(few, fit_ctx())


def test_config_rejects_bad_values_and_reads_overrides():
    cfg = apply_overrides(VAEConfig(), {"latent_dim": "8", "sampling": "prior", "posterior_scale": "0.5"})
    assert (cfg.latent_dim, cfg.sampling, cfg.posterior_scale) == (8, "prior", 0.5)
    with pytest.raises(ConfigError, match="expected one of posterior, prior"):
        apply_overrides(VAEConfig(), {"sampling": "nearby"})
    with pytest.raises(ConfigError, match="latent_dim must be at least 1"):
        VAEConfig(latent_dim=0)
    with pytest.raises(ConfigError, match="valid keys"):
        apply_overrides(VAEConfig(), {"latent": "3"})


# (8) early stopping on the validation set -------------------------------------------------------
class Recorder(Progress):
    """A progress reporter that records the bar's total and every advance."""

    def __init__(self):
        super().__init__(quiet=True)
        self.total, self.done, self.status = None, 0, []

    @contextmanager
    def task(self, description, total):
        self.total = total
        recorder = self

        class _Task:
            def advance(self, n=1, status=None):
                recorder.done += n
                recorder.status.append(status)

            def set_status(self, status):
                recorder.status.append(status)

        yield _Task()


def test_early_stopping_uses_the_validation_set_and_keeps_the_best_weights(train, monkeypatch):
    # validation images unlike the training images (inverted): their loss soon rises
    val = shapes(8, seed=2, invert=True)
    seen = []  # (validation images, loss, weights) of every validation pass

    def spy(self, vae, xv, eps):
        loss = original(self, vae, xv, eps)
        seen.append((xv, loss, {k: v.clone() for k, v in vae.state_dict().items()}))
        return loss

    original = VAEMethod._val_loss
    monkeypatch.setattr(VAEMethod, "_val_loss", spy)
    method = new_method(epochs=40, patience=3, kl_warmup_steps=0)
    progress = Recorder()
    metrics = method.fit(train, FitContext(generator=torch.Generator().manual_seed(0), progress=progress, val=val))
    assert progress.total == 80 and progress.done == 80  # the bar completes even when stopped early
    assert any("stopped early" in (s or "") for s in progress.status)
    for c, name in enumerate(CLASSES):
        run, best = metrics["epochs_run"][name], metrics["best_epoch"][name]
        assert run < 40 and run == best + 3
        passes = [p for p in seen if torch.equal(p[0], val.float_images(torch.nonzero(val.labels == c).flatten()))]
        assert len(passes) == run  # one pass over this class's validation images per epoch
        losses = [p[1] for p in passes]
        assert min(losses) == losses[best - 1]
        assert metrics["val_loss"][name] == pytest.approx(losses[best - 1], abs=1e-3)
        kept = method.vaes[c].state_dict()
        assert all(torch.equal(kept[k], passes[best - 1][2][k]) for k in kept)  # the best epoch's weights
    # without a validation set every epoch runs and nothing is reported for validation
    plain = new_method(epochs=5, patience=3).fit(train, fit_ctx())
    assert plain["epochs_run"] == {"square": 5, "disc": 5} and plain["val_loss"] == {"square": None, "disc": None}


def test_early_stopping_waits_for_min_steps_and_the_kl_warmup(train):
    val = shapes(8, seed=2, invert=True)
    late = new_method(epochs=25, patience=3, kl_warmup_steps=0, min_steps=60)  # 3 steps per epoch
    metrics = late.fit(train, fit_ctx(val=val))
    assert all(20 <= run < 25 for run in metrics["epochs_run"].values())
    warm = new_method(epochs=25, patience=3, kl_warmup_steps=45).fit(train, fit_ctx(val=val))
    # patience counts from epoch 15, whose last step is step 45; the best epoch here is the first
    assert warm["best_epoch"] == {"square": 1, "disc": 1} and warm["epochs_run"] == {"square": 17, "disc": 17}


def test_min_steps_gives_small_classes_more_epochs():
    method = new_method(epochs=10, min_steps=100, batch_size=16)
    assert method.class_epochs(200) == 10  # 13 steps per epoch: 130 >= 100
    assert method.class_epochs(20) == 50  # 2 steps per epoch


def test_finished_class_vaes_are_reused_from_the_work_dir(train, tmp_path, monkeypatch):
    first = new_method(epochs=3)
    first.fit(train, fit_ctx(9, work_dir=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vae_class_0.safetensors", "vae_class_1.safetensors"]
    second = new_method(epochs=3)
    monkeypatch.setattr(second, "new_network", lambda cfg, g: pytest.fail("retrained a finished class"))
    metrics = second.fit(train, fit_ctx(9, work_dir=tmp_path))
    assert metrics["train_loss"] == first.fit_metrics["train_loss"]
    w1, w2 = first.state_tensors(), second.state_tensors()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


# the plugin module ------------------------------------------------------------------------------
def test_plugin_registers_lazily_without_importing_torch():
    code = (
        "import sys, lagaug.plugins.vae as p; seen = []\n"
        "p.lagaug_register_methods(register=lambda t, **kw: seen.append((t, kw['name'])))\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print(seen)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "('lagaug.plugins.vae.method:VAEMethod', 'vae')" in out


def test_the_registry_finds_the_method_by_name(monkeypatch):
    from importlib.metadata import entry_points

    from lagaug.core.contract.plugins import make_plugin_manager

    if not any(ep.name == "vae" for ep in entry_points(group="lagaug")):
        pytest.skip("lagaug is not installed (no entry points to discover)")
    monkeypatch.delenv("LAGAUG_LOAD_PLUGINS", raising=False)
    assert make_plugin_manager().get_method("vae") is VAEMethod


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fits_and_samples_on_the_context_device(train, tmp_path):
    cuda = torch.device("cuda")
    method = new_method(epochs=3)
    method.fit(train, fit_ctx(device=cuda, val=shapes(4, seed=3)))
    assert next(method.vaes[0].parameters()).device.type == "cuda"
    ctx = stage_ctx(1, device=cuda, variants=2)
    x, soft = train.float_images([0, 50]), train.targets()[[0, 50]]
    out = method.decode(method.resample(method.encode(x, soft, ctx), ctx), ctx)
    assert out.images.device.type == "cpu" and out.images.shape == (4, 1, SIZE, SIZE)
    method.save(tmp_path / "gen")
    loaded = VAEMethod.load(tmp_path / "gen")  # on the CPU
    cpu_ctx = stage_ctx(1, variants=2)
    again = loaded.decode(loaded.resample(loaded.encode(x, soft, cpu_ctx), cpu_ctx), cpu_ctx)
    assert torch.allclose(out.images, again.images, atol=1e-4)
