"""Opt-in GPU checks of the ``vqvae2`` plugin (skipped without CUDA): the device comes from the
context, randomness from the CPU generator, and the cached sampler stays exact on the GPU."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def exact_fp32():
    """TF32 would change the last digits of the teacher-forced pass; compare in true fp32."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("attention, conditioned", [(False, True), (True, False)])
def test_cached_sampler_on_gpu_matches_teacher_forcing_and_cpu(attention, conditioned):
    from test_vqvae2_sampler import random_codes, random_prior

    from lagaug.plugins.vqvae2.sampler import box_mask, sample

    model = random_prior(attention, conditioned)
    codes, top = random_codes(model)
    mask = box_mask(model.shape, (1, 0, 5, 6))
    cpu = sample(model, codes, mask=mask, condition=top, generator=torch.Generator().manual_seed(4))
    gpu_model = model.cuda()
    top_gpu = None if top is None else top.cuda()
    new, logits = sample(gpu_model, codes.cuda(), mask=mask, condition=top_gpu,
                         generator=torch.Generator().manual_seed(4), return_logits=True)
    with torch.no_grad():
        forced = gpu_model(new, condition=top_gpu)
    seen = ~torch.isnan(logits)
    assert (logits[seen] - forced[seen]).abs().max().item() <= 1e-4
    assert torch.equal(new.cpu(), cpu)  # same CPU noise -> same codes on either device


def test_method_runs_on_the_context_device():
    from test_vqvae2_method import TINY, ctx, shapes_set

    from lagaug.core.contract.method import FitContext
    from lagaug.core.data import InMemoryPool
    from lagaug.plugins.vqvae2.method import VQVAE2Config, VQVAE2Method

    train = shapes_set(32, seed=1)
    method = VQVAE2Method(VQVAE2Config(**{**TINY, "epochs": 3, "prior_epochs": 2}), (1, 32, 32),
                          train.class_names)
    method.fit(train, FitContext(generator=torch.Generator().manual_seed(0), device=torch.device("cuda")),
               unlabeled=InMemoryPool(shapes_set(32, seed=2)))
    stage = ctx(1, variants=2)
    stage.device = torch.device("cuda")
    latents = method.encode(train.float_images(torch.arange(3)), train.targets()[:3], stage)
    out = method.decode(method.resample(latents, stage), stage)
    assert out.images.device.type == "cpu" and out.images.shape == (6, 1, 32, 32)
    assert set(out.metrics) == {"structure_error", "detail_change", "codes_changed"}
