"""The core's default stage implementations (``trylast``): they delegate to the chosen method.

Registered as the plugin ``core``. Any other plugin's implementation runs first and may return a
result (override) or wrap the call (``wrapper=True``).
"""

from __future__ import annotations

from lagaug import hookimpl


@hookimpl(trylast=True)
def lagaug_encode(method, images, soft, context):
    return method.encode(images, soft, context)


@hookimpl(trylast=True)
def lagaug_resample(method, latents, context):
    return method.resample(latents, context)


@hookimpl(trylast=True)
def lagaug_decode(method, latents, context):
    return method.decode(latents, context)
