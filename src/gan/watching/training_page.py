"""The train step's page: progress frames (strip and animation) and loss charts.

Hand-written SVG rather than a plotting library: the charts need lines, ticks
and a legend, and the steps' images would otherwise install matplotlib (~40 MB).
The page is self-contained (data: URIs, no scripts, no external URLs), so KFP's
sandboxed viewer and Vertex's artifact viewer render it; charts scale to the frame.
"""

from __future__ import annotations

import base64
import html
import math
from typing import Any

from src.gan.sampling.render import thumbnail
from src.gan.watching.progress_frames import animation, shown

CHARTS = (
    ("Discriminator and generator loss", {"d_loss": "#d62728", "g_loss": "#1f77b4"}),
    ("Gradient penalty and discriminator reconstruction loss", {"gp": "#2ca02c", "aux": "#9467bd"}),
    ("Augmentation probability (fixed in lightweight-gan)", {"aug_prob": "#7f7f7f"}),
)
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 52, 12, 26, 30
SMOOTHING = 0.6


def smoothed(values: list[float]) -> list[float]:
    """TensorBoard's debiased exponential moving average."""
    out, mean = [], 0.0
    for index, value in enumerate(values, start=1):
        mean = SMOOTHING * mean + (1 - SMOOTHING) * value
        out.append(mean / (1 - SMOOTHING**index))
    return out


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten) spanning low..high."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}"


def chart_svg(title: str, history: list[dict[str, Any]], series: dict[str, str]) -> str:
    """One chart: a thin line of interval means and a thick smoothed one per series."""
    lines = {k: [(r["step"], r[k]) for r in history if r.get(k) is not None] for k in series}
    points = [p for values in lines.values() for p in values]
    if not points:
        return ""
    (x0, x1), (y0, y1) = [(min(v), max(v)) for v in zip(*points, strict=True)]
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def xy(x: float, y: float) -> str:
        px = LEFT + (x - x0) / ((x1 - x0) or 1) * (WIDTH - LEFT - RIGHT)
        return f"{px:.1f},{TOP + (y1 - y) / (y1 - y0) * (HEIGHT - TOP - BOTTOM):.1f}"

    parts = [f'<text x="{LEFT}" y="16" font-weight="bold">{html.escape(title)}</text>']
    for y in ticks(y0, y1):
        _, py = xy(x0, y).split(",")
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py}" y2="{py}" stroke="#eee"/>'
            f'<text x="{LEFT - 4}" y="{py}" text-anchor="end" dy="4">{_label(y)}</text>'
        )
    for x in ticks(x0, x1):
        px, _ = xy(x, y0).split(",")
        parts.append(f'<text x="{px}" y="{HEIGHT - 12}" text-anchor="middle">{x:g}</text>')
    for index, (key, colour) in enumerate(series.items()):
        if not lines[key]:
            continue
        steps, raw = zip(*lines[key], strict=True)
        for values, width, opacity in ((raw, 1, 0.35), (smoothed(list(raw)), 2, 1)):
            path = " ".join(xy(x, y) for x, y in zip(steps, values, strict=True))
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" '
                f'stroke-opacity="{opacity}" points="{path}"/>'
            )
        parts.append(
            f'<text x="{WIDTH - RIGHT - 150 + 80 * index}" y="16" fill="{colour}">{key}</text>'
        )
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 1}" text-anchor="end">step</text>')
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="sans-serif" font-size="11">'
        f"{''.join(parts)}</svg>"
    )


def _data_uri(kind: str, data: bytes) -> str:
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


def progress_html(frames: list[dict[str, Any]]) -> str:
    """The animation and a strip of frames with their steps."""
    if not frames:
        return "<p>No progress frames.</p>"
    strip = "".join(
        f'<figure><img src="{_data_uri("webp", thumbnail(f["png"], 128))}" alt="step {f["step"]}">'
        f"<figcaption>step {f['step']}</figcaption></figure>"
        for f in shown(frames)
    )
    return (
        f'<h3>Samples from fixed latents</h3><img class="anim" alt="progress animation" '
        f'src="{_data_uri("webp", animation(frames))}"><div class="strip">{strip}</div>'
    )


def _rounded(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def training_report_html(
    history: list[dict[str, Any]], frames: list[dict[str, Any]], summary: dict[str, Any]
) -> str:
    """The whole page: summary table, progress frames, loss charts."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(_rounded(v)))}</td></tr>"
        for k, v in sorted(summary.items())
    )
    charts = "".join(chart_svg(title, history, series) for title, series in CHARTS)
    note = (
        "Thin lines: the mean over each logging interval; thick: smoothed (EMA 0.6)."
        if history
        else "No steps were logged."
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Training</title><style>"
        "body{font-family:sans-serif;margin:12px;max-width:960px}svg{width:100%;height:auto}"
        "figure{display:inline-block;margin:2px;text-align:center}.strip img{width:96px}"
        "figcaption{font-size:11px;color:#555}.anim{width:256px;max-width:100%}"
        "table{border-collapse:collapse;font-size:12px}th,td{padding:2px 8px;text-align:left}"
        f"</style></head><body><h2>Training</h2>{progress_html(frames)}"
        f"<h3>Losses</h3><p>{note}</p>{charts}<h3>Run</h3><table>{rows}</table></body></html>"
    )
