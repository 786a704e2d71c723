"""Thumbnails of the images that image runs kept, for the leaderboard page.

A run keeps its first images only when asked (``scenario.save_images``); the page shows up to
``PER_RUN`` of them per run, each shrunk to ``THUMB_PX`` wide and inlined, so the page stays
self-contained and small whatever the images' size.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from orchestrator.reports.ratings import Rated
from orchestrator.store.paths import OutputLayout

log = logging.getLogger(__name__)

PER_RUN = 4
THUMB_PX = 128


def thumbnail(path: Path, width: int = THUMB_PX) -> bytes:
    """A PNG of the image at ``path``, ``width`` pixels wide (never enlarged)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image
        if image.width > width:
            small = image.resize((width, max(1, round(image.height * width / image.width))))
        out = io.BytesIO()
        small.save(out, format="PNG")
    return out.getvalue()


def kept_images(output: OutputLayout, run_name: str) -> list[Path]:
    """The images a run kept, in prompt order, up to ``PER_RUN``."""
    return sorted(output.images_dir(run_name).glob("*.png"))[:PER_RUN]


def gallery_html(rated: Sequence[Rated], output: OutputLayout) -> str:
    """A section with each image run's kept images as thumbnails ("" when no run kept any)."""
    runs = []
    for r in rated:
        name = str(r.row.get("run_name") or "")
        if r.row.get("task") != "image_gen" or not name:
            continue
        cells = []
        for path in kept_images(output, name):
            try:
                data = base64.b64encode(thumbnail(path)).decode("ascii")
            except (OSError, ValueError) as exc:  # one unreadable image never costs the page
                log.warning("report: thumbnail of %s not made: %s", path, exc)
                continue
            alt = html.escape(f"{name}: {path.name}")
            cells.append(f'<img src="data:image/png;base64,{data}" alt="{alt}" title="{alt}">')
        if cells:
            runs.append(
                f'<div class="gallery-run"><h3>{html.escape(name)}</h3>{"".join(cells)}</div>'
            )
    if not runs:
        return ""
    return (
        '<section id="gallery"><h2>Images kept by image runs</h2>'
        f'<p class="note">The first images of each run (scenario.save_images), {THUMB_PX} px '
        f"wide; the full PNGs are in each run's folder.</p>{''.join(runs)}</section>"
    )
