"""Opt-in GPU checks of the ``stylegan2`` plugin (skipped without CUDA): the device comes from the
context, randomness from the CPU generator (device generators are seeded from it), and the networks
compute the same on either device."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def exact_fp32():
    """TF32 and non-deterministic conv algorithms would change the last digits; compare in true
    fp32 with deterministic kernels."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
           torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = old


def test_fit_and_stages_on_the_gpu():
    from test_stylegan2_method import TINY, shapes_set

    from lagaug.core.contract.method import FitContext, StageContext
    from lagaug.plugins.stylegan2.method import StyleGAN2Config, StyleGAN2Method

    train = shapes_set(24, seed=1)
    method = StyleGAN2Method(StyleGAN2Config(**{**TINY, "steps": 20}), (1, 16, 16), train.class_names)
    method.fit(train, FitContext(generator=torch.Generator().manual_seed(0), device=torch.device("cuda")))
    assert next(method.generator.parameters()).is_cuda
    images = train.float_images(torch.arange(3))

    def run(seed):
        ctx = StageContext(generator=torch.Generator().manual_seed(seed), device=torch.device("cuda"),
                           variants=2, options={"direction": "class"})
        return method.decode(method.resample(method.encode(images, train.targets()[:3], ctx), ctx), ctx)

    a, b = run(1), run(1)
    assert a.images.device.type == "cpu" and a.images.shape == (6, 1, 16, 16)
    torch.testing.assert_close(a.images, b.images, rtol=0, atol=1e-5)
    # the same weights and fixed noise give the same images on the CPU
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(2)).cuda()
    with torch.no_grad():
        w = method.generator.mapping(z)
        gpu = method.generator.synthesis(w).cpu()
        cpu = method.generator.cpu().synthesis(w.cpu())
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-4)
