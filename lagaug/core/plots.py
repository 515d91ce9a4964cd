"""Pictures of a run: the metric per iteration with its interval, and before/after image grids."""

from __future__ import annotations

from pathlib import Path

import torch


def plot_metrics(rows: list[dict], path: str | Path, metrics: tuple[str, ...] = ("auc", "f1")) -> Path | None:
    """Line plot of each metric's mean per iteration with its 95% interval as error bars."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lagaug.core.store.atomic import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    its = [r["iteration"] for r in rows]
    for name in metrics:
        means = [r.get(f"{name}_mean", float("nan")) for r in rows]
        cis = [r.get(f"{name}_ci", 0.0) for r in rows]
        # the interval clipped to the metric's range [0, 1] (an undefined one is not drawn)
        low = [m - max(0.0, m - c) if c == c else 0.0 for m, c in zip(means, cis)]
        high = [min(1.0, m + c) - m if c == c else 0.0 for m, c in zip(means, cis)]
        ax.errorbar(its, means, yerr=[low, high], marker="o", capsize=4, label=f"{name} (mean, 95% CI)")
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("iteration (0 = baseline)")
    ax.set_ylabel("test metric")
    ax.set_xticks(its)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def partner_images(pool, source: torch.Tensor) -> list[torch.Tensor]:
    """Per synthetic image, the pool images of its secondary sources (``source[:, 1:]``, -1 skipped)."""
    out = []
    for row in source:
        rows = [int(r) for r in row[1:].tolist() if r >= 0]
        out.append(pool.float_images(rows) if rows else torch.zeros(0, *pool.images.shape[1:]))
    return out


def save_pair_grid(path: str | Path, sources: torch.Tensor, synth: torch.Tensor, source_index: torch.Tensor,
                   scale: int = 2, partners: list[torch.Tensor] | None = None) -> Path:
    """One row per source image: the source, then every image made from it.

    ``partners[j]`` (``(P, C, H, W)``, possibly empty): the other images synthetic image ``j``
    was made from (a mix's partner, an overlay's other sources); when any is given, each made
    image is drawn after its partners, and groups are set apart by a wider gap."""
    from lagaug.core.store.atomic import save_png

    c, h, w = sources.shape[1:]
    pad = 2
    with_partners = partners is not None and any(len(p) for p in partners)
    groups: list[list[list[torch.Tensor]]] = []
    for i in range(len(sources)):
        made = torch.nonzero(source_index == i).flatten().tolist()
        groups.append([[sources[i]]] + [[*(partners[j] if with_partners else []), synth[j]] for j in made])
    gap = 4 * pad if with_partners else pad
    width = max((sum(len(g) * (w + pad) for g in row) + (len(row) - 1) * (gap - pad) for row in groups),
                default=w + pad)
    rows = []
    for row_groups in groups:
        row = torch.full((c, h, width), 1.0)
        x = 0
        for group in row_groups:
            for cell in group:
                row[:, :, x : x + w] = cell.float().cpu()
                x += w + pad
            x += gap - pad
        rows.append(row)
        rows.append(torch.ones(c, pad, width))
    grid = torch.cat(rows, dim=1) if rows else torch.zeros(c, h, w)
    if scale > 1:
        grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return save_png(path, grid)
