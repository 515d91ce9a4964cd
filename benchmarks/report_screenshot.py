"""Make the README's screenshot of report.html (docs/report.png) from a real ``lagaug augment`` run.

    python benchmarks/report_screenshot.py                      # the command below, then the picture
    python benchmarks/report_screenshot.py --out /tmp/shot -- --method vae --hard-k 2 --quality-gate

Runs ``lagaug augment ARGS --out OUT`` exactly as a user would (ARGS after ``--``; default
:data:`DEFAULT_ARGS`), continuing a run already in OUT with ``--resume``, writes its report, opens
it in headless Chromium (``apt-get install chromium``; lagaug.report.browser) and saves the
first WIDTH x HEIGHT CSS pixels of the page as a PNG. Exits 1 when the browser finds an error on
the page. It prints the command it ran: the README names it under the picture. The run takes as long
as the command does (the default: about 20 minutes on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import io
import shlex
import subprocess
import sys
from pathlib import Path

from lagaug.report import write_report
from lagaug.report.browser import check_page, find_browser

DEFAULT_ARGS = ["--method", "vqvae2", "--hard-k", "4", "--quality-gate"]
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "lagaug-runs" / "report-screenshot",
                        help="the run directory (a finished run there is reused)")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "report.png", help="where the picture goes")
    parser.add_argument("--width", type=int, default=1280, help="window width, CSS pixels")
    parser.add_argument("--height", type=int, default=1500, help="how much of the page's top to keep, CSS pixels")
    parser.add_argument("augment", nargs="*", help="lagaug augment arguments (after --)")
    args = parser.parse_args()
    if find_browser() is None:
        print("no chromium on PATH: install one (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    command = ["lagaug", "augment", *(args.augment or DEFAULT_ARGS)]
    resume = ["--resume"] if (args.out / "config.json").is_file() else []
    print("running:", shlex.join(command + ["--out", str(args.out), *resume]), flush=True)
    done = subprocess.run([sys.executable, "-m", "lagaug", *command[1:], "--out", str(args.out), *resume])
    if done.returncode != 0:
        return done.returncode
    page = write_report(args.out)
    check = check_page(page, args.width, args.height, full_page=False)
    for error in check.errors:
        print(f"error on the page: {error}", file=sys.stderr)
    from PIL import Image

    with Image.open(io.BytesIO(check.screenshot)) as im:  # fewer colours: a smaller file, the same look
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.png, optimize=True)
    print(f"wrote {args.png} ({args.png.stat().st_size // 1024} KB): the top {args.width}x{args.height} of {page}")
    print(f"README: made by `{shlex.join(command)}` (then `python benchmarks/report_screenshot.py`)")
    return 1 if check.errors or check.broken_images else 0


if __name__ == "__main__":
    sys.exit(main())
