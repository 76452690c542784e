"""A PNG screenshot of an HTML report, taken by headless chromium: what the browser test checks
and what docs/report.png is.

    python -m mgrec.report.screenshot RUN_DIR/report_test.html docs/report.png

docs/report.png is the top of the report of `mgrec demo` (the real-motion demo data), taken so.
The page's scripts run before the picture is taken (the timelines draw their time axes); the
image is reduced to a 256-colour palette, which keeps a report's flat colours and text sharp at a
fraction of the size.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from mgrec.errors import InputError
from mgrec.files import resolve_path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The path of a chromium (or Chrome) executable on PATH, or None."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def chromium_command(chromium: str, profile: Path, page: Path, *action: str) -> list[str]:
    """A headless chromium run on `page` that reaches nothing outside it, with `profile` as its user folder."""
    return [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--force-device-scale-factor=1", f"--user-data-dir={profile}", "--virtual-time-budget=2000",
        "--hide-scrollbars", *action, resolve_path(page).as_uri(),
    ]


def screenshot(
    page: str | Path, png: str | Path, width: int = 1280, height: int = 1000, chromium: str | None = None,
    palette: bool = True,
) -> Path:
    """Render `page` at `width` x `height` CSS pixels and write the top of it to `png`; returns `png`."""
    page, png = Path(page), Path(png)
    if not page.is_file():
        raise InputError(f"{page}: not found; expected an HTML report (mgrec report RUN_DIR)")
    chromium = chromium or find_chromium()
    if chromium is None:
        raise InputError(f"no chromium found on PATH (tried {', '.join(CHROMIUM_NAMES)}); "
                         "install one, e.g. apt-get install chromium")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mgrec-shot-") as folder:
        raw = Path(folder) / "shot.png"
        command = chromium_command(chromium, Path(folder) / "profile", page, f"--window-size={width},{height}",
                                   f"--screenshot={raw}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if done.returncode != 0 or not raw.is_file():
            raise RuntimeError(f"{chromium} failed on {page} (exit {done.returncode}): {done.stderr[-1000:]}")
        with Image.open(raw) as image:
            picture = image.convert("RGB")
        if palette:
            picture = picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        picture.save(png, optimize=True)
    return png


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mgrec.report.screenshot", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("page", help="the HTML report")
    parser.add_argument("png", help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels")
    parser.add_argument("--height", type=int, default=1000, help="window height in CSS pixels (the top of the page)")
    args = parser.parse_args(argv)
    path = screenshot(args.page, args.png, args.width, args.height)
    print(f"{path}: {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
