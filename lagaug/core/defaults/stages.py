"""The core's default stage implementations (``trylast``): they delegate to the chosen method.

Registered as the plugin ``core``. Any other plugin's implementation runs first and may return a
result (override) or wrap the call (``wrapper=True``). The default ``lagaug_find_region`` is
:func:`lagaug.core.regions.stage.find_regions`; the default ``lagaug_decode`` also applies the
regions (:func:`lagaug.core.regions.stage.apply_regions`: a ``blend`` method gets its region's
pixels put back).
"""

from __future__ import annotations

from lagaug import hookimpl


@hookimpl(trylast=True)
def lagaug_find_region(method, images, soft, context):
    from lagaug.core.regions.stage import find_regions

    return find_regions(images, soft, context)


@hookimpl(trylast=True)
def lagaug_encode(method, images, soft, context):
    return method.encode(images, soft, context)


@hookimpl(trylast=True)
def lagaug_resample(method, latents, context):
    return method.resample(latents, context)


@hookimpl(trylast=True)
def lagaug_decode(method, latents, context):
    from lagaug.core.regions.stage import apply_regions

    synthesis = method.decode(latents, context)
    apply_regions(method, synthesis, context)
    return synthesis
