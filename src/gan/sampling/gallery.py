"""The generate step's page: generated images beside real ones, the interpolation, scores explained.

Images are inlined as small WebP thumbnails (at most 256 px wide, never enlarged
beyond 2x), each linking to its full PNG in the samples artifact, so 64 images
at 256 px stay well under 3 MB.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from PIL import Image

from src.gan.images import load_images
from src.gan.sampling.render import encode, thumbnail, to_pil, to_uint8
from src.gan.scoring.swd import load_float_images

CAP = 256
REAL_SHOWN = 16
WEIGHTS = {"raw": "the generator's trained weights", "ema": "the generator's moving average (EMA)"}
EXPLAIN = {
    "swd": "Sliced Wasserstein distance between the 7x7 patch statistics of generated and real "
    "images (Karras et al. 2018). Lower is better.",
    "real_floor": "The same distance between two halves of the real images: what a perfect "
    "generator scores with this many images.",
    "noise": "Uniform noise against the real images: what an untrained generator scores.",
    "fid": "Fréchet Inception Distance on Inception-v3 features. Lower is better; "
    "compare runs only at the same image count.",
}


def browser_link(uri: str) -> str:
    """A link a browser opens: gs:// objects through the Cloud console's authenticated host."""
    if uri.startswith("gs://"):
        return "https://storage.cloud.google.com/" + uri.removeprefix("gs://")
    return uri


def shown_width(width: int, height: int, cap: int = CAP) -> int:
    """Pictures under 64 px high are shown at twice their size (pixelated, so crisp), at most cap."""
    return min(cap, width * 2 if height < 64 else width)


def _figure(data: bytes, link: str, caption: str, cap: int = CAP) -> str:
    with Image.open(io.BytesIO(data)) as image:
        width = shown_width(image.width, image.height, cap)
    webp = base64.b64encode(thumbnail(data, cap)).decode()
    picture = (
        f'<img width="{width}" alt="{html.escape(caption)}" src="data:image/webp;base64,{webp}">'
    )
    if link:
        picture = f'<a href="{html.escape(link)}">{picture}</a>'
    return f"<figure>{picture}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _about(meta: dict[str, Any]) -> str:
    """The generation's settings as a sentence."""
    weights = WEIGHTS.get(meta["generator"], meta["generator"])
    return (
        f"{meta['count']} images from {weights} at step {meta['step']}, seed {meta['seed']} "
        f"({meta['images_per_second']:.0f} images per second)."
    )


def _scores_table(scores: dict[str, float]) -> str:
    rows = "".join(
        f"<tr><th>{key}</th><td>{scores[key]:.4f}</td><td>{html.escape(text)}</td></tr>"
        for key, text in EXPLAIN.items()
        if key in scores and math.isfinite(scores[key])
    )
    span = scores.get("noise", 0) - scores.get("real_floor", 0)
    verdict = ""
    if span > 0:
        share = (scores["noise"] - scores["swd"]) / span
        verdict = (
            f"<p>The generator has come {share:.0%} of the way from noise to the real-vs-real floor "
            f"(SWD, {scores['images']} images each).</p>"
        )
    return f"<table>{rows}</table>{verdict}"


def gallery_html(
    samples_dir: Path,
    real_dir: Path,
    files: list[str],
    scores: dict[str, float],
    meta: dict[str, Any],
    samples_uri: str = "",
) -> str:
    """The whole page; `samples_uri` (the artifact's URI) makes each image link to its PNG."""
    base = browser_link(samples_uri).rstrip("/")
    names = [name for name in files if name.startswith("image_")]
    generated = "".join(
        _figure((samples_dir / name).read_bytes(), f"{base}/{name}" if base else name, f"image {i}")
        for i, name in enumerate(names)
    )
    real_count = len(load_images(real_dir, 3))  # a memory map: nothing is read
    reals = to_uint8(load_float_images(real_dir, 3, limit=REAL_SHOWN))
    real = "".join(_figure(encode(to_pil(array)), "", f"real {i}") for i, array in enumerate(reals))
    strip = ""
    if (samples_dir / "interpolation.png").is_file():
        link = f"{base}/interpolation.png" if base else "interpolation.png"
        strip = "<h3>Interpolation between two latents</h3>" + _figure(
            (samples_dir / "interpolation.png").read_bytes(), link, "interpolation.png", 4 * CAP
        )
    cell = f"style='--cell:{shown_width(reals.shape[2], reals.shape[1])}px'"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Samples</title><style>"
        "body{font-family:sans-serif;margin:12px}figure{display:inline-block;margin:0;text-align:center}"
        "img{image-rendering:pixelated;max-width:100%}figcaption{font-size:10px;"
        "color:#555}table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;"
        "text-align:left;border-bottom:1px solid #eee}.cols{display:flex;flex-wrap:wrap;gap:16px}"
        ".cols section{flex:1 1 320px}.grid{display:grid;gap:4px;"
        "grid-template-columns:repeat(auto-fill,minmax(var(--cell),1fr))}</style></head><body>"
        f"<h2>Lightweight GAN samples, step {meta.get('step')}</h2>{_scores_table(scores)}"
        f"<p>{html.escape(_about(meta))}</p><div class='cols'><section><h3>Generated "
        f"({len(names)})</h3><div class='grid' {cell}>{generated}</div></section><section>"
        f"<h3>Real training images ({len(reals)} of {real_count})</h3><div class='grid' {cell}>"
        f"{real}</div></section></div>{strip}</body></html>"
    )
