"""Time report.html for a run with a thousand synthetic images, and check it in headless Chromium.

    python benchmarks/bench_report.py                 # 1000 images of 32 px, and 1000 of 256 px
    python benchmarks/bench_report.py --images 5000 --side 64 --keep /tmp/big-run

For each size it writes a made-up augment run (lagaug.report.demo: two rounds, every image mixed
from two sources), then prints the time to build and write report.html (best of --repeat), the
page's size, and — where a chromium is on PATH — the browser's load time, console errors, broken
images, and whether a 375-px window needs sideways scrolling. Exits 1 when the browser finds an
error. Run it by hand: the figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lagaug.report import write_report
from lagaug.report.browser import check_page, find_browser
from lagaug.report.demo import write_augment_run


def bench(root: Path, images: int, side: int, repeat: int, screenshot: Path | None) -> bool:
    write_augment_run(root, images=images // 2, side=side, iterations=2, sources=2)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        page = write_report(root)
        times.append(time.perf_counter() - start)
    print(f"{images} images of {side}x{side}: report.html built and written in {min(times):.3f} s "
          f"(best of {repeat}), {page.stat().st_size / 1e6:.1f} MB")
    if find_browser() is None:
        print("  no chromium on PATH: browser check skipped")
        return True
    wide = check_page(page, 1280, 900, full_page=False)
    narrow = check_page(page, 375, 700, full_page=False)
    print(f"  chromium: load event after {wide.load_ms:.0f} ms; {wide.images} images, {wide.broken_images} broken; "
          f"console errors: {len(wide.errors) + len(narrow.errors)}; 375-px window scrolls sideways: "
          f"{'yes' if narrow.scroll_width > narrow.inner_width else 'no'}")
    for error in wide.errors + narrow.errors:
        print(f"  error: {error}")
    if screenshot is not None:
        screenshot.write_bytes(wide.screenshot)
        print(f"  screenshot (first screen): {screenshot}")
    return not (wide.errors or narrow.errors or wide.broken_images)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="synthetic images in the run")
    parser.add_argument("--side", type=int, action="append", help="image side in pixels (repeatable) [32, 256]")
    parser.add_argument("--repeat", type=int, default=3, help="builds timed per size (the best is shown)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs under this folder")
    parser.add_argument("--screenshot", type=Path, default=None, help="save the first screen of the last page here")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="lagaug-bench-report-"))
    ok = True
    try:
        for side in args.side or [32, 256]:
            root = base / f"run-{args.images}-{side}px"
            shutil.rmtree(root, ignore_errors=True)
            ok &= bench(root, args.images, side, args.repeat, args.screenshot)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
