"""The core's default scorer and selector (the Høj & Møgelmoose hard-sample criterion).

Registered by :func:`lagaug.core.contract.plugins.make_plugin_manager` as the built-in plugin ``hardness``,
whatever entry points exist; ``trylast``, so any plugin may override either stage.

Score: each training image's mean softmax confidence in its true label over the ensemble members
(for a soft label y: the sum over classes of y_k * p_k). Lower is harder.
Select: the k lowest scores, optionally only from chosen classes and only among real images.
"""

from __future__ import annotations

from lagaug import hookimpl


def true_label_confidence(probs, targets):
    """Mean over members of the confidence in the (soft) true label.

    :param probs: ``(M, N, K)`` softmax outputs of M members on N images.
    :param targets: ``(N, K)`` soft targets (one-hot for plain labels).
    :return: ``(N,)`` scores.
    """
    return (probs * targets.unsqueeze(0)).sum(-1).mean(0)


def check_hard_k(k: int, n: int, where: str = "candidate images") -> None:
    """``--hard-k`` ``k`` must not exceed the ``n`` images the selection may choose from (one
    message, used before the run starts and by the selector itself)."""
    from lagaug.core.errors import ConfigError

    if k > n:
        raise ConfigError(f"--hard-k {k} is larger than the {n} {where}; lower --hard-k or widen --classes")


def hardest(scores, candidates, k: int):
    """Indices of the ``k`` lowest ``scores`` among the bool mask ``candidates`` (stable ties)."""
    import torch

    idx = torch.nonzero(candidates, as_tuple=False).flatten()
    check_hard_k(k, len(idx))
    order = torch.sort(scores[idx], stable=True).indices[:k]
    return idx[order]


@hookimpl(trylast=True)
def lagaug_score(method, ensemble, dataset, context):
    probs = ensemble.predict_proba(dataset.float_images(), progress=context.progress)
    return true_label_confidence(probs, dataset.targets())


@hookimpl(trylast=True)
def lagaug_select(method, scores, dataset, k, classes, include_synthetic, context):
    import torch

    candidates = torch.ones(len(dataset), dtype=torch.bool)
    if classes is not None:
        candidates &= torch.isin(dataset.labels, torch.as_tensor(list(classes), dtype=torch.long))
    if not include_synthetic:
        candidates &= ~dataset.synthetic
    return hardest(scores, candidates, k)
