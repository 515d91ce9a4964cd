"""StyleGAN2 training at test size: the GAN learns (losses move, g_ema's samples move towards the
data's statistics and away from the untrained generator's), batches mix pool and training images,
the regularisers run, training is seeded, and a checkpointed run resumes."""

from __future__ import annotations

import pytest
import torch

from lagaug.core.data import ImageSet, InMemoryPool
from lagaug.plugins.stylegan2.networks import Discriminator, Generator, scaled_channels
from lagaug.plugins.stylegan2.training import TrainOptions, real_batches, to_unit_range, train_gan

SIZE = 16
CH = scaled_channels(SIZE, 256, 16)  # 16 channels at 4..16 px


def disks(n: int, seed: int) -> torch.Tensor:
    """Bright disks of random place and radius on a dark, slightly noisy background, [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    cy, cx = (torch.rand(2, n, 1, 1, generator=g) * 0.5 + 0.25) * SIZE
    r = (torch.rand(n, 1, 1, generator=g) * 0.1 + 0.2) * SIZE
    disk = (((yy - cy) ** 2 + (xx - cx) ** 2) < r**2).float()
    return (0.1 + 0.8 * disk + 0.05 * torch.rand(n, SIZE, SIZE, generator=g)).clamp(0, 1).unsqueeze(1)


def stats(images: torch.Tensor) -> torch.Tensor:
    """Mean, standard deviation and share of bright pixels, and the mean local contrast."""
    x = images.float()
    return torch.stack([x.mean(), x.std(), (x > 0.5).float().mean(), (x[..., 1:] - x[..., :-1]).abs().mean()])


def nets(seed: int):
    g = torch.Generator().manual_seed(seed)
    return Generator(SIZE, 16, 2, CH, 1, generator=g), Discriminator(SIZE, CH, 1, generator=g)


def samples(gen: Generator, n: int = 64) -> torch.Tensor:
    z = torch.randn(n, gen.style_dim, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        return to_unit_range(gen(z, generator=torch.Generator().manual_seed(12)))


@pytest.fixture(scope="module")
def trained():
    data = disks(96, 0)
    g, d = nets(0)
    untrained = samples(g)
    opts = TrainOptions(steps=150, batch_size=8, lr=0.004, r1_gamma=0.1, ema_kimg=0.2, mixing=0.5)
    gen = torch.Generator().manual_seed(0)
    g_ema, record = train_gan(g, d, real_batches(data, None, opts, gen), opts, gen, "cpu", log_every=25)
    return data, untrained, g_ema, record


def test_the_gan_learns(trained):
    data, untrained, g_ema, record = trained
    assert record.steps_done == 150 and len(record.d_loss) == 6
    # the losses move: the generator's rises from chance as the discriminator learns, or falls
    assert abs(record.g_loss[-1] - record.g_loss[0]) > 0.1 or abs(record.d_loss[-1] - record.d_loss[0]) > 0.1
    assert len(record.r1) == 6  # lazy R1 every 16 steps
    target = stats(data)
    before = (stats(untrained) - target).norm()
    after = (stats(samples(g_ema)) - target).norm()
    assert after < 0.5 * before, (float(before), float(after))
    # g_ema's samples differ from the untrained generator's in the same measured way
    assert (stats(samples(g_ema)) - stats(untrained)).norm() > 0.5 * before


def test_batches_mix_the_pool_with_training_images():
    train = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    pool = InMemoryPool(ImageSet(images=torch.ones(7, 1, 4, 4), labels=torch.zeros(7), class_names=["a"],
                                 ids=[str(i) for i in range(7)]))
    opts = TrainOptions(batch_size=8, train_share=0.25)
    stream = real_batches(train, pool, opts, torch.Generator().manual_seed(0))
    for _ in range(5):  # more than one pass over both
        batch = next(stream)
        assert batch.shape == (8, 1, 4, 4) and batch.dtype == torch.float32
        assert int((batch.flatten(1)[:, 0] == 1).sum()) == 6  # 6 pool images, 2 training images
    alone = real_batches(train, None, opts, torch.Generator().manual_seed(0))
    assert float(next(alone).max()) == 0.0
    few = real_batches(train[:3], None, opts, torch.Generator().manual_seed(0))  # fewer than a batch
    assert next(few).shape[0] == 8


def test_regularisers_and_options_run():
    g, d = nets(1)
    opts = TrainOptions(steps=5, batch_size=4, path_regularize=2.0, g_reg_every=2, d_reg_every=2,
                        mixing=1.0, mirror=True)
    gen = torch.Generator().manual_seed(1)
    g_ema, record = train_gan(g, d, real_batches(disks(8, 1), None, opts, gen), opts, gen, "cpu", log_every=1)
    assert len(record.path_penalty) == 3 and len(record.r1) == 3
    assert all(v == v for v in record.path_penalty)  # finite


def test_training_is_seeded_and_leaves_global_random_state_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    results = []
    for seed in (3, 3, 4):
        g, d = nets(2)
        opts = TrainOptions(steps=4, batch_size=4, mixing=0.5)
        gen = torch.Generator().manual_seed(seed)
        g_ema, _ = train_gan(g, d, real_batches(disks(8, 2), None, opts, gen), opts, gen, "cpu")
        results.append(g_ema.state_dict())
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    assert not torch.equal(results[0]["conv1.conv.weight"], results[2]["conv1.conv.weight"])


def test_a_checkpointed_run_resumes(tmp_path):
    opts = TrainOptions(steps=6, batch_size=4)
    g, d = nets(3)
    gen = torch.Generator().manual_seed(0)
    train_gan(g, d, real_batches(disks(8, 3), None, opts, gen), TrainOptions(steps=4, batch_size=4), gen, "cpu",
              checkpoint_dir=tmp_path, checkpoint_every=3, fingerprint="abc")
    assert (tmp_path / "train_state.safetensors").is_file()  # saved at step 3 (not at the end)
    g, d = nets(3)
    gen = torch.Generator().manual_seed(0)
    _, record = train_gan(g, d, real_batches(disks(8, 3), None, opts, gen), opts, gen, "cpu",
                          checkpoint_dir=tmp_path, checkpoint_every=3, fingerprint="abc")
    assert record.resumed_from == 3 and record.steps_done == 6
    g, d = nets(3)
    _, other = train_gan(g, d, real_batches(disks(8, 3), None, opts, gen), opts, gen, "cpu",
                         checkpoint_dir=tmp_path, checkpoint_every=0, fingerprint="other config")
    assert other.resumed_from == 0
