"""Thumbnails embedded in the page as ``data:`` URIs, so report.html stands alone.

Images no larger than :data:`THUMB` pixels a side are embedded as they are (their PNG bytes: no
decoding, so a thousand small images cost milliseconds); larger ones are shrunk to fit
:data:`THUMB` first. Each tile links to the full image in the run directory.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

THUMB = 128


def thumbnail_uri(path: Path, max_side: int = THUMB) -> str | None:
    """A ``data:image/png;base64,...`` URI of the image at ``path`` (at most ``max_side`` pixels a
    side), or ``None`` when the file is missing or unreadable."""
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
            im.thumbnail((max_side, max_side))
            if im.mode not in ("L", "RGB", "RGBA", "LA"):
                im = im.convert("RGB")
            buf = io.BytesIO()
            im.save(buf, format="PNG")
    except Exception:  # a broken file shows as a missing image, never stops the report
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _png_side(raw: bytes) -> int:
    """The larger side of a PNG from its IHDR chunk (no decoding)."""
    if len(raw) < 24 or raw[12:16] != b"IHDR":
        return 1 << 30
    return max(int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big"))
