"""The cleanse step's contact sheet: a few kept and dropped images per reason, for a person.

Kept images come from the cleansed array; dropped ones are thumbnailed from the
raw set when they decode (duplicates, small images), broken ones are shown by
name and reason only. Thumbnails are inlined as small WebPs, so the page stays
light for any dataset size.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image

from src.common.image_array import has_array, load_array
from src.data.layout import InputFile

THUMB = 96
SHOWN = 8
KEPT_SAMPLE = 48  # kept images on the page: SHOWN at once, the rest behind a click
DECODABLE = ("duplicate", "near_duplicate", "too_small")


def thumbnail_uri(source) -> str | None:
    """A data: URI of a small WebP of an image (file, array or InputFile), None if it does not decode."""
    try:
        if isinstance(source, InputFile):
            with source.open() as handle:
                return thumbnail_uri(io.BytesIO(handle.read()))
        opened = (
            Image.fromarray(source.squeeze()) if hasattr(source, "shape") else Image.open(source)
        )
        with opened as image:
            image.draft("RGB", (THUMB, THUMB))
            image.thumbnail((THUMB, THUMB))
            buffer = io.BytesIO()
            image.convert("RGBA" if "A" in image.getbands() else "RGB").save(
                buffer, format="WEBP", quality=75
            )
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode()


def _tile(source, name: str, note: str = "") -> str:
    uri = thumbnail_uri(source) if source is not None else None
    picture = f'<img src="{uri}" alt="">' if uri else '<div class="none">not shown</div>'
    caption = html.escape(name) + (f"<br><i>{html.escape(note)}</i>" if note else "")
    return f"<figure>{picture}<figcaption>{caption}</figcaption></figure>"


def _kept_html(array, sources: list[str]) -> str:
    """A sample of the kept images, spread over the set: SHOWN at once, more behind a click."""
    count = min(len(sources), KEPT_SAMPLE)
    rows = sorted({i * len(sources) // count for i in range(count)})
    tiles = [_tile(None if array is None else array[i], sources[i]) for i in rows]
    more = (
        f"<details><summary>{len(tiles) - SHOWN} more ({len(tiles)} of {len(sources)})</summary>"
        f"{''.join(tiles[SHOWN:])}</details>"
        if len(tiles) > SHOWN
        else ""
    )
    return (
        f"<h3>Kept ({len(sources)})</h3><p>{min(SHOWN, len(tiles))} of {len(sources)} shown, "
        f"spread over the set in name order.</p>{''.join(tiles[:SHOWN])}{more}"
    )


def contact_sheet_html(
    inputs: list[InputFile],
    out_dir: Path,
    dropped: dict[str, list[tuple[str, str]]],
    counts: dict[str, int],
    kept: list[str],
    advice: str = "",
) -> str:
    """`dropped` maps each reason to (file, detail) examples; duplicates' detail is the kept file.

    Every file is named by its source path; `kept` holds the kept ones' in row order.
    Without an array in `out_dir` (too few images survived) they are named only.
    """
    array = load_array(out_dir)[0] if has_array(out_dir) else None
    sections = [_kept_html(array, kept)]
    by_name = {item.relative: item for item in inputs}
    for reason, examples in sorted(dropped.items()):
        tiles = []
        for source, detail in examples[:SHOWN]:
            shown = by_name.get(source) if reason in DECODABLE else None
            note = f"repeats {detail}" if reason.endswith("duplicate") else detail
            tiles.append(_tile(shown, source, note))
        sections.append(
            f"<h3>Dropped: {html.escape(reason)} ({counts[reason]})</h3>{''.join(tiles)}"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Cleanse</title><style>"
        "body{font-family:sans-serif;margin:12px}figure{display:inline-block;width:110px;"
        "margin:3px;vertical-align:top;text-align:center}img,.none{width:96px;height:96px;"
        "object-fit:contain;background:#f4f4f4;image-rendering:pixelated}.none{display:flex;"
        "align-items:center;justify-content:center;color:#999;font-size:11px}figcaption{"
        "font-size:10px;word-break:break-all}summary{cursor:pointer;margin:6px 0}</style>"
        f"</head><body><h2>Cleanse contact sheet</h2><p>{html.escape(advice)}</p>"
        f"{''.join(sections)}</body></html>"
    )
