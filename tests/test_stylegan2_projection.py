"""Projection into W and the latent moves: a generated image is recovered far better than by the
mean w; batched projection equals one-by-one projection; the schedules and the noise regulariser;
W statistics, principal and class directions; and a ``class`` move keeps the class (by a classifier
trained here on images) more often than a random move of the same length."""

from __future__ import annotations

import pytest
import torch

from lagaug.core.contract.method import FitContext, Latents, StageContext
from lagaug.core.data import ImageSet
from lagaug.plugins.stylegan2.directions import (
    class_move,
    fit_class_directions,
    mapping_samples,
    principal_directions,
    w_statistics,
)
from lagaug.plugins.stylegan2.method import StyleGAN2Config, StyleGAN2Method
from lagaug.plugins.stylegan2.networks import Discriminator, Generator, scaled_channels
from lagaug.plugins.stylegan2.projection import (
    ProjectOptions,
    learning_rate,
    noise_regularizer,
    noise_scale,
    project,
    reconstruct,
)
from lagaug.plugins.stylegan2.training import to_unit_range

SIZE = 16
CH = scaled_channels(SIZE, 256, 16)


@pytest.fixture(scope="module")
def gan():
    g = Generator(SIZE, 16, 2, CH, 1, generator=torch.Generator().manual_seed(0))
    d = Discriminator(SIZE, CH, 1, generator=torch.Generator().manual_seed(1))
    samples = mapping_samples(g, 10000, torch.Generator().manual_seed(2), "cpu")
    w_avg, w_std, spread = w_statistics(samples)
    return g, d, w_avg, w_std, spread, samples


def test_projection_recovers_a_generated_image(gan):
    g, d, w_avg, _, spread, _ = gan
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        w_true = g.mapping(z)
        target = to_unit_range(g.synthesis(w_true))  # the stored fixed noise
        mean_image = to_unit_range(g.synthesis(w_avg.expand(4, -1)))
    mean_error = (mean_image - target).abs().flatten(1).mean(1)
    opts = ProjectOptions(steps=120, patience=0)
    calls = []
    p = project(g, target, w_avg, spread, opts, torch.Generator().manual_seed(4), "cpu", d=d,
                advance=calls.append)
    assert p.w.shape == (4, 16) and len(p.noise) == g.num_layers and p.noise[-1].shape == (4, 1, 16, 16)
    assert p.steps == 120 and len(calls) == 120 and p.history[-1] < p.history[0]
    # about 3x closer on average (gradient descent in W finds near, not exact, matches)
    assert float(p.error.mean()) < 0.35 * float(mean_error.mean()), (p.error, mean_error)
    assert torch.all(p.error < 0.5 * mean_error), (p.error, mean_error)
    torch.testing.assert_close((reconstruct(g, p.w, p.noise, "cpu") - target).abs().flatten(1).mean(1), p.error)
    assert all(prm.requires_grad for prm in g.parameters())  # the networks are left as they were


def test_w_plus_and_early_stop(gan):
    g, d, w_avg, _, spread, _ = gan
    with torch.no_grad():
        target = to_unit_range(g(torch.randn(2, 16, generator=torch.Generator().manual_seed(5))))
    opts = ProjectOptions(steps=400, w_plus=True, patience=10, tol=0.05, optimize_noise=False)
    p = project(g, target, w_avg, spread, opts, torch.Generator().manual_seed(6), "cpu", d=None)
    assert p.w.shape == (2, g.n_latent, 16)
    assert p.steps < 400  # stopped: no image improved its best loss by 5% for 10 steps


def test_batched_projection_equals_one_by_one(gan):
    """Adam works element-wise and each image's loss depends on its own latent only."""
    g, d, w_avg, _, spread, _ = gan
    with torch.no_grad():
        targets = to_unit_range(g(torch.randn(3, 16, generator=torch.Generator().manual_seed(7))))
    opts = ProjectOptions(steps=30, noise_start=0.0, optimize_noise=False, patience=0)
    together = project(g, targets, w_avg, spread, opts, torch.Generator(), "cpu", d=d)
    for i in range(3):
        alone = project(g, targets[i : i + 1], w_avg, spread, opts, torch.Generator(), "cpu", d=d)
        torch.testing.assert_close(alone.w[0], together.w[i], rtol=1e-3, atol=1e-4)


def test_schedules_and_noise_regulariser():
    opts = ProjectOptions(lr=0.1, lr_rampup=0.05, lr_rampdown=0.25, noise_start=0.05, noise_ramp=0.75)
    assert learning_rate(0.0, opts) == 0.0 and learning_rate(0.5, opts) == pytest.approx(0.1)
    assert learning_rate(0.025, opts) == pytest.approx(0.05)  # half-way up the ramp
    assert learning_rate(0.875, opts) == pytest.approx(0.05)  # half-way down the cosine
    assert noise_scale(0.0, opts) == pytest.approx(0.05) and noise_scale(0.75, opts) == 0.0
    assert noise_scale(0.375, opts) == pytest.approx(0.05 * 0.25)
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(2, 1, 32, 32, generator=g)]
    smooth = [torch.ones(2, 1, 32, 32)]
    assert noise_regularizer(white).shape == (2,)
    assert float(noise_regularizer(white).max()) < 0.01 < float(noise_regularizer(smooth).min())


def test_statistics_and_principal_directions():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
    scales = torch.tensor([5.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    x = (torch.randn(20000, 6, generator=g) * scales) @ basis.t() + 3.0
    mean, std, spread = w_statistics(x)
    torch.testing.assert_close(mean, torch.full((6,), 3.0), atol=0.1, rtol=0)
    assert spread == pytest.approx(float(scales.pow(2).sum().sqrt()), rel=0.02)
    comps, stds = principal_directions(x, 2)
    assert abs(float(comps[0] @ basis[:, 0])) > 0.999 and abs(float(comps[1] @ basis[:, 1])) > 0.99
    torch.testing.assert_close(stds, scales[:2], rtol=0.03, atol=0)


def test_class_directions_find_the_separating_normal():
    g = torch.Generator().manual_seed(1)
    true = torch.nn.functional.normalize(torch.randn(8, generator=g), dim=0)
    labels = torch.tensor([0] * 150 + [1] * 50)  # imbalanced
    w = torch.randn(200, 8, generator=g) + (labels.float() * 2 - 1)[:, None] * 1.5 * true
    fitted = fit_class_directions(w, labels, 3, torch.zeros(8), torch.ones(8))
    assert float(fitted["normals"][1] @ true) > 0.95 and float(fitted["normals"][0] @ true) < -0.95
    assert fitted["present"].tolist() == [1.0, 1.0, 0.0] and fitted["normals"][2].abs().sum() == 0
    assert float(fitted["accuracy"][1]) > 0.9
    dist = w @ fitted["normals"][1] + fitted["offsets"][1]
    assert float(((dist > 0) == (labels == 1)).float().mean()) > 0.9
    move = class_move(w, labels, fitted["normals"], fitted["offsets"], fitted["spreads"], 1.5,
                      torch.Generator().manual_seed(2))
    # never across the boundary: a row inside its class stays inside, one outside only moves in
    inside = move["distance_before"] > 0
    assert torch.all(move["distance_after"][inside] >= move["distance_before"][inside] / 2 - 1e-5)
    assert torch.all(move["magnitude"][~inside] >= 0)
    assert bool((move["magnitude"] < 0).any())  # some moves go against the normal


def brightness_images(method: StyleGAN2Method, n: int, seed: int) -> torch.Tensor:
    with torch.no_grad():
        z = torch.randn(n, 16, generator=torch.Generator().manual_seed(seed))
        return to_unit_range(method.generator.synthesis(method.generator.mapping(z)))


def test_a_class_move_keeps_the_class_more_often_than_a_random_move_of_the_same_length():
    cfg = StyleGAN2Config(style_dim=16, n_mlp=2, channel_base=256, channel_max=16, class_proj_steps=60,
                          proj_steps=60, proj_patience=0, magnitude=2.0, class_max_images=100)
    method = StyleGAN2Method(cfg, (1, SIZE, SIZE), ["dark", "bright"])
    method.measure_w(torch.Generator().manual_seed(0), "cpu")
    train_x = brightness_images(method, 160, 1)
    threshold = float(train_x.flatten(1).mean(1).median())
    label = lambda x: (x.flatten(1).mean(1) > threshold).long()  # noqa: E731
    train = ImageSet(images=train_x, labels=label(train_x), class_names=["dark", "bright"],
                     ids=[str(i) for i in range(160)])
    ctx = FitContext(generator=torch.Generator().manual_seed(1))
    info = method.fit_class_directions(train, ctx)["class_directions"]
    assert min(info["accuracy"]) > 0.8
    # the test's own classifier: logistic regression on pixels, trained on the training images
    xs, ys = train.float_images().flatten(1), train.labels.float()
    a, b = torch.zeros(xs.shape[1], requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(xs @ a + b, ys).backward()
        opt.step()
    classify = lambda x: (x.flatten(1) @ a.detach() + b.detach() > 0).long()  # noqa: E731
    assert float((classify(train.float_images()) == train.labels).float().mean()) > 0.9
    # new images, their class by the classifier; project, move, decode
    fresh = brightness_images(method, 48, 2)
    classes = classify(fresh)
    sctx = StageContext(generator=torch.Generator().manual_seed(3), variants=2, options={"direction": "class"})
    latents = method.encode(fresh, torch.nn.functional.one_hot(classes, 2).float(), sctx)
    moved = method.resample(latents, sctx)
    delta = moved.codes["w"] - moved.codes["w_source"]
    length = delta.norm(dim=1, keepdim=True)
    rand = torch.randn(delta.shape, generator=torch.Generator().manual_seed(4))
    random_w = moved.codes["w_source"] + rand / rand.norm(dim=1, keepdim=True) * length
    kept_class = classify(method.decode(moved, sctx).images) == classes.repeat_interleave(2)
    as_random = Latents(codes={**moved.codes, "w": random_w}, source=moved.source, soft=moved.soft)
    kept_random = classify(method.decode(as_random, sctx).images) == classes.repeat_interleave(2)
    assert float(kept_class.float().mean()) > float(kept_random.float().mean()) + 0.1, (
        float(kept_class.float().mean()), float(kept_random.float().mean()))
