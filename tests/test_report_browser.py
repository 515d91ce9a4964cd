"""report.html in a real browser: headless Chromium opens it, no console error is raised, every
image decodes, the page is not blank, and a narrow (phone-sized) window needs no sideways scroll.

Runs where a Chromium is on PATH (Debian: ``apt-get install chromium``); skipped elsewhere.
``benchmarks/bench_report.py`` runs the same check on a run with a thousand images."""

from __future__ import annotations

import io

import pytest

from lagaug.report import write_report
from lagaug.report.browser import check_page, find_browser
from lagaug.report.demo import write_augment_run, write_compare_run

pytestmark = pytest.mark.skipif(
    find_browser() is None,
    reason="no chromium on PATH: the browser check of report.html needs one (Debian: apt-get install chromium)")


def spread(png: bytes) -> float:
    """Standard deviation of the screenshot's gray levels (0 for a blank page)."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as im:
        return ImageStat.Stat(im.convert("L")).stddev[0]


@pytest.mark.parametrize("kind", ["augment", "compare"])
def test_report_opens_without_errors_and_fits_a_narrow_window(kind, tmp_path):
    root = (write_augment_run(tmp_path / "run", images=12, sources=2) if kind == "augment"
            else write_compare_run(tmp_path / "run", images=30))
    page = write_report(root)
    images = page.read_text(encoding="utf-8").count("<img ")
    wide = check_page(page, 1100, 900)
    assert wide.errors == []
    assert wide.images == images > 10 and wide.broken_images == 0
    assert spread(wide.screenshot) > 20
    narrow = check_page(page, 375, 700, full_page=False)
    assert narrow.errors == [] and narrow.scroll_width <= narrow.inner_width == 375


def test_the_check_sees_console_errors_missing_images_and_blank_pages(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p>x</p><img src="missing.png" alt="gone">'
                   '<script>console.error("boom"); undefinedFunction();</script></body></html>')
    seen = check_page(bad, 400, 300)
    assert any("boom" in e for e in seen.errors) and any("undefinedFunction" in e for e in seen.errors)
    assert any("missing.png" in e for e in seen.errors) and seen.broken_images == 1
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert spread(check_page(blank, 400, 300).screenshot) < 1
