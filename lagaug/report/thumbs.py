"""Thumbnails embedded in the page as ``data:`` URIs, so report.html stands alone.

Images no larger than :data:`THUMB` pixels a side are embedded as they are (their PNG bytes: no
decoding, lossless, so a thousand small images cost milliseconds); larger ones are shrunk to fit
:data:`THUMB` and embedded as JPEG (small and quick to make; the tile links to the full PNG).
:func:`thumbnails` makes many at once on a few threads (Pillow decodes without the GIL).
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

THUMB = 128


def thumbnail_uri(path: Path, max_side: int = THUMB) -> str | None:
    """A ``data:`` URI of the image at ``path`` (at most ``max_side`` pixels a side), or ``None``
    when the file is missing or unreadable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and _png_side(raw) <= max_side:
        return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as im:
            im.draft("RGB" if im.mode == "RGB" else "L", (max_side, max_side))  # JPEG sources: decode small
            factor = max(1, max(im.size) // max_side)
            small = im.reduce(factor) if factor > 1 else im.copy()
            small.thumbnail((max_side, max_side))
            if small.mode not in ("L", "RGB"):
                small = small.convert("RGB")
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=90)
    except Exception:  # a broken file shows as a missing image, never stops the report
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnails(paths: list[Path], max_side: int = THUMB, workers: int | None = None) -> dict[Path, str | None]:
    """:func:`thumbnail_uri` of every path, made on ``workers`` threads (default: the CPUs, at most 8)."""
    unique = list(dict.fromkeys(Path(p) for p in paths))
    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or len(unique) < 32:
        return {p: thumbnail_uri(p, max_side) for p in unique}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(unique, pool.map(lambda p: thumbnail_uri(p, max_side), unique)))


def _png_side(raw: bytes) -> int:
    """The larger side of a PNG from its IHDR chunk (no decoding)."""
    if len(raw) < 24 or raw[12:16] != b"IHDR":
        return 1 << 30
    return max(int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big"))
