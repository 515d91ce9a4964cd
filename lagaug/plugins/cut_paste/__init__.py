"""The built-in ``cut-paste`` plugin: the practitioner's baseline for defect images — the defect's
pixels (its mask, or the region found for it) pasted onto a defect-free image with a soft edge.

No generator is learnt; a latent method that cannot beat this is not worth its fit. The method class
lives in :mod:`lagaug.plugins.cut_paste.method` (registered by name: no torch at start-up).
"""

from lagaug import hookimpl


@hookimpl
def lagaug_register_methods(register):
    register(
        "lagaug.plugins.cut_paste.method:CutPasteMethod",
        name="cut-paste",
        description="pixel cut-and-paste: the defect (mask or found region) pasted onto a defect-free pool or "
        "training image with a feathered edge (the practitioner's baseline)",
    )
