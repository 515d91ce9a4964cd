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

    from lagaug.core.store import atomic_write_bytes

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


def save_pair_grid(path: str | Path, sources: torch.Tensor, synth: torch.Tensor, source_index: torch.Tensor,
                   scale: int = 2) -> Path:
    """One row per source image: the source, then every image made from it."""
    from lagaug.core.store import save_png

    rows = []
    n_cols = 1 + max((int((source_index == i).sum()) for i in range(len(sources))), default=0)
    c, h, w = sources.shape[1:]
    pad = 2
    for i in range(len(sources)):
        made = synth[source_index == i]
        cells = [sources[i]] + list(made)
        cells += [torch.zeros(c, h, w)] * (n_cols - len(cells))
        row = torch.full((c, h, n_cols * (w + pad)), 1.0)
        for j, cell in enumerate(cells):
            row[:, :, j * (w + pad) : j * (w + pad) + w] = cell.float().cpu()
        rows.append(row)
        rows.append(torch.ones(c, pad, row.shape[2]))
    grid = torch.cat(rows, dim=1) if rows else torch.zeros(c, h, w)
    if scale > 1:
        grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return save_png(path, grid)
