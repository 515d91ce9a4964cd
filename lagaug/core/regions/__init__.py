"""Where the class evidence lies, and what synthesis keeps of it.

A **region** is a per-pixel bool map of the part of an image that makes it its class (a crack, a
scratch, a chip). It comes from the data (a mask per image), or, for an image without a mask, is
found by the ``lagaug_find_region`` stage (:mod:`lagaug.core.regions.stage`): an **anomaly map**
(:mod:`.anomaly`: where a model of defect-free images fails to reconstruct the image) or the
ensemble's **saliency** (:mod:`.saliency`: where hiding the image hurts its true class most).

Images of the *normal* (defect-free) classes have no region: there is nothing to keep, so a
method varies all of them. A method told a region keeps it: ``vqvae2`` keeps the codes under it and
resamples the rest (or transplants them onto a defect-free background); methods without a latent
notion of place blend the region's pixels back (:func:`.masks.blend_region`).

:mod:`.masks` holds the mask arithmetic (dilation, grids, feathering) and the data checks;
:mod:`.measure` the figures that say how well a finder finds real defects (IoU, pixel AUROC);
:mod:`.backgrounds` the defect-free backgrounds a region is put onto (from the pool or the training set).
"""
