"""The stage pipeline: find region -> encode -> resample -> decode -> filter, each through its plugin
hook, so a plugin can wrap or override any stage for every caller (``augment``'s rounds,
``compare``'s arms, ``lagaug sample``). The one place synthetic images are made."""

from __future__ import annotations

import time

import torch

from lagaug.core.contract.method import GeneratorMethod, StageContext, Synthesis
from lagaug.core.contract.plugins import LagaugPluginManager
from lagaug.core.errors import PluginError

REJECTED = "rejected by a lagaug_filter_synthesized plugin"


def verdict_reasons(verdict, n: int) -> list[str | None]:
    """One filter's verdict as a reason per image (``None`` keeps it): a bool mask (``False``
    drops, for no stated reason) or a sequence of ``str | None`` (a string drops, and says why)."""
    if isinstance(verdict, (list, tuple)) and all(v is None or isinstance(v, str) for v in verdict):
        reasons = [v or None for v in verdict]
    else:
        keep = torch.as_tensor(verdict, dtype=torch.bool).reshape(-1)
        reasons = [None if bool(k) else REJECTED for k in keep]
    if len(reasons) != n:
        raise ValueError(f"a lagaug_filter_synthesized verdict has {len(reasons)} entries for {n} images")
    return reasons


def synthesize(plugins: LagaugPluginManager, method: GeneratorMethod, images: torch.Tensor,
               soft: torch.Tensor, ctx: StageContext, *, keep_dropped: bool = False) -> Synthesis:
    """find region -> encode -> resample -> decode -> filter, each through its plugin hook.

    Without ``ctx.pool`` the batch is its own pool (sources are batch rows). Images a filter
    rejects are removed, or, with ``keep_dropped``, kept with ``synthesis.dropped`` and
    ``synthesis.reasons`` set (every filter's reason, joined with ``"; "``) so the caller can record
    them; ``synthesis.kept`` is then what joins a training set. ``ctx.timings`` gets the seconds
    each stage took (``find_region``, ``encode``, ``resample``, ``decode`` — with label fidelity —
    and ``filter``: the quality gate and other filters).
    """
    if ctx.pool is None and ctx.batch_index is None:
        ctx.batch_index = torch.arange(len(images))
    def call(hook: str, **kwargs):
        start = time.perf_counter()
        out = plugins.call_stage(hook, method=method, context=ctx, **kwargs)
        stage = hook.removeprefix("lagaug_")
        ctx.timings[stage] = round(ctx.timings.get(stage, 0.0) + time.perf_counter() - start, 4)
        return out

    ctx.regions = call("lagaug_find_region", images=images, soft=soft)
    latents = call("lagaug_encode", images=images, soft=soft)
    latents = call("lagaug_resample", latents=latents)
    synthesis = call("lagaug_decode", latents=latents)
    start = time.perf_counter()
    n = len(synthesis)
    bad = int((~torch.isfinite(synthesis.images.float().flatten(1))).any(1).sum()) if n else 0
    if bad:  # never written, never trained on
        raise PluginError(f"method {method.name!r} decoded {bad} of {n} image(s) with pixels that are not finite "
                          "numbers (NaN or infinity); nothing was written — check its --set options "
                          "(a value too large?)")
    reasons: list[list[str]] = [[] for _ in range(n)]
    judged = False  # whether any filter gave a verdict: only then are verdicts recorded
    for verdict in plugins.hook.lagaug_filter_synthesized(method=method, synthesis=synthesis, context=ctx):
        if verdict is not None:
            judged = True
            for j, why in enumerate(verdict_reasons(verdict, n)):
                if why is not None and why not in reasons[j]:
                    reasons[j].append(why)
    if judged:
        synthesis.dropped = torch.tensor([bool(r) for r in reasons], dtype=torch.bool)
        synthesis.reasons = ["; ".join(r) if r else None for r in reasons]
        synthesis.filters = list(getattr(plugins, "last_answers", {}).get("lagaug_filter_synthesized", []))
    ctx.timings["filter"] = round(ctx.timings.get("filter", 0.0) + time.perf_counter() - start, 4)
    return synthesis if keep_dropped else synthesis.kept
