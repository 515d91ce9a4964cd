"""The plugin hooks of lagaug.

A plugin is a module (or object) with functions decorated by ``lagaug.hookimpl`` whose names match
the specifications below, announced through the ``lagaug`` entry-point group.

Generator methods are chosen by name: ``lagaug_register_methods`` fills a name -> class table. The
stage hooks (``lagaug_find_region``, ``lagaug_encode``, ``lagaug_resample``, ``lagaug_decode``,
``lagaug_score``, ``lagaug_select``) are ``firstresult``: the core's own implementation is ``trylast`` and delegates
to the chosen method (or the default scorer / selector), so another plugin may return a result to
override a stage, or wrap it with ``@hookimpl(wrapper=True)``.

This module imports no torch: type names in the docstrings refer to :mod:`lagaug.core.contract.method` and
:mod:`lagaug.core.data`.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("lagaug")


@hookspec
def lagaug_register_methods(register):
    """Register generator method classes.

    :param register: a callable; ``register(MethodClass)`` adds one class, a subclass of
        :class:`lagaug.GeneratorMethod` with a unique ``name``. Registering a second class under a
        name already taken is an error (:class:`lagaug.PluginError`) naming both plugins.

    Called once per plugin when the plugin manager is built, each plugin with its own
    ``register`` (so an error names the plugin). Only functions marked with
    ``@lagaug.hookimpl`` are hook implementations. Return value ignored.
    """


@hookspec
def lagaug_register_commands(cli):
    """Add commands to the ``lagaug`` command line.

    :param cli: the ``click.Group`` of the ``lagaug`` command; add commands with
        ``@cli.command()``. Keep heavy imports (torch) inside the command functions so that
        ``lagaug --help`` stays fast.

    Called once per plugin when the CLI is built; a plugin that raises is reported and left out.
    Return value ignored.
    """


@hookspec(firstresult=True)
def lagaug_find_region(method, images, soft, context):
    """Find where each image's class evidence lies (its defect), before it is encoded.

    :param method: the :class:`lagaug.GeneratorMethod` the run uses.
    :param images: float32 tensor ``(N, C, H, W)`` in ``[0, 1]``: the batch about to be encoded.
    :param soft: float32 tensor ``(N, K)``: the images' soft labels.
    :param context: the :class:`lagaug.StageContext`: ``context.batch_rows(N)`` are the images' rows
        of ``context.pool`` (whose ``masks`` hold the masks given with the data),
        ``context.region_source`` (``auto``, ``mask``, ``anomaly``, ``saliency`` or ``none``),
        ``context.normal_classes`` (defect-free classes: no region), ``context.anomaly`` (a fitted
        anomaly model or ``None``) and ``context.classify`` (the ensemble, for saliency).
    :return: a :class:`lagaug.Regions` for the batch (``rows``, bool ``masks (N, H, W)``, a source
        name per image), or ``None`` to pass.

    ``firstresult``; the core's default follows ``context.region_source`` (``auto``: the given
    mask, else the anomaly map when an anomaly model was fitted, else none). The result is set as
    ``context.regions`` for the stages that follow.
    """


@hookspec(firstresult=True)
def lagaug_encode(method, images, soft, context):
    """Encode a batch of images into the chosen method's latent space.

    :param method: the fitted :class:`lagaug.GeneratorMethod` the run uses.
    :param images: float32 tensor ``(N, C, H, W)`` in ``[0, 1]``.
    :param soft: float32 tensor ``(N, K)``: the soft label of every image (one-hot for plain labels).
    :param context: the :class:`lagaug.StageContext` (seeded generator, device, options, iteration).
    :return: a :class:`lagaug.Latents`, or ``None`` to leave the stage to the next implementation.

    ``firstresult``: the first non-``None`` result is used; the default delegates to
    ``method.encode``. Every implementation returning ``None`` is a :class:`lagaug.PluginError`.
    """


@hookspec(firstresult=True)
def lagaug_resample(method, latents, context):
    """Make new latents from encoded ones.

    :param method: the :class:`lagaug.GeneratorMethod` the run uses.
    :param latents: the :class:`lagaug.Latents` returned by ``lagaug_encode``.
    :param context: the :class:`lagaug.StageContext`; ``context.variants`` is how many new rows to
        make per source row and ``context.options`` holds method-specific sampling options.
    :return: new :class:`lagaug.Latents` whose ``source`` still points into the encoded batch, or
        ``None`` to pass.

    ``firstresult``; the default delegates to ``method.resample``.
    """


@hookspec(firstresult=True)
def lagaug_decode(method, latents, context):
    """Decode latents into images.

    :param method: the :class:`lagaug.GeneratorMethod` the run uses.
    :param latents: the resampled :class:`lagaug.Latents`.
    :param context: the :class:`lagaug.StageContext`.
    :return: a :class:`lagaug.Synthesis` (images in ``[0, 1]``, soft labels, source rows, optional
        per-image metrics), or ``None`` to pass.

    ``firstresult``; the default delegates to ``method.decode``.
    """


@hookspec(firstresult=True)
def lagaug_score(method, ensemble, dataset, context):
    """Score how hard every training image is for the classifier ensemble.

    :param method: the :class:`lagaug.GeneratorMethod` the run uses (an override may apply to one
        method only and return ``None`` for the others).
    :param ensemble: the trained :class:`lagaug.core.classifier.Ensemble` of this iteration.
    :param dataset: the current training :class:`lagaug.ImageSet` (real and synthetic images).
    :param context: the :class:`lagaug.StageContext`; ``context.pool`` is ``dataset``,
        ``context.ensemble`` the iteration's ensemble and ``context.probs`` its mean class
        probabilities for every image ``(N, K)``.
    :return: float32 tensor ``(N,)``, one score per image of ``dataset``; **lower means harder**.
        ``None`` passes. The default is the mean softmax confidence in the true label over the
        ensemble's members (for soft labels: the confidence weighted by the soft label).

    ``firstresult``.
    """


@hookspec(firstresult=True)
def lagaug_select(method, scores, dataset, k, classes, include_synthetic, context):
    """Choose the images to augment.

    :param method: the :class:`lagaug.GeneratorMethod` the run uses.
    :param scores: float32 tensor ``(N,)`` from ``lagaug_score`` (lower = harder).
    :param dataset: the current training :class:`lagaug.ImageSet`.
    :param k: how many images to choose.
    :param classes: class indices to choose from, or ``None`` for all classes.
    :param include_synthetic: whether synthetic images may be chosen.
    :param context: the :class:`lagaug.StageContext`; ``context.pool`` is ``dataset``,
        ``context.ensemble`` the iteration's ensemble and ``context.probs`` its mean class
        probabilities for every image ``(N, K)`` (e.g. to choose by entropy).
    :return: int64 tensor of at most ``k`` row indices into ``dataset``, or ``None`` to pass. The
        default picks the ``k`` lowest scores among the candidates (ties: lower index first) and
        raises :class:`lagaug.ConfigError` when fewer than ``k`` candidates exist.

    ``firstresult``.
    """


@hookspec
def lagaug_filter_synthesized(method, synthesis, context):
    """Veto synthesized images before they join the training set.

    :param method: the :class:`lagaug.GeneratorMethod` the run uses.
    :param synthesis: the decoded :class:`lagaug.Synthesis` (with ``label_fidelity``,
        ``class_wins`` and ``source_distance`` metrics where the core's ``quality`` plugin could
        score them).
    :param context: the :class:`lagaug.StageContext` (``context.classify``, ``context.gate``).
    :return: a bool tensor ``(N,)`` (``True`` keeps the image), a list of ``N`` reasons (``None``
        keeps the image, a string drops it and says why), or ``None`` for no opinion.

    Every implementation is called; an image is kept only if no implementation rejects it. The
    loop and ``compare`` still write dropped images, marked ``dropped`` with their ``reason``.
    """


@hookspec
def lagaug_iteration_end(iteration, metrics, added, run_dir):
    """Called after every iteration of the hard-sample loop (for loggers and trackers).

    :param iteration: the iteration number (0 is the baseline before any synthetic image).
    :param metrics: dict of this iteration's figures (``auc_mean``, ``auc_ci``, ``f1_mean``,
        ``f1_ci``, ``train_size``, ``added`` ...), exactly as written to ``metrics.jsonl``.
    :param added: the number of synthetic images added in this iteration.
    :param run_dir: the run directory (``pathlib.Path``).

    Return value ignored. An exception here is reported and does not stop the run.
    """
