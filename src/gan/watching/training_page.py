"""The train step's page: progress frames (the latest, an animation, a strip) and loss charts.

Hand-written SVG rather than a plotting library: the charts need lines, ticks
and axis labels, and the steps' images would otherwise install matplotlib (~40 MB).
The page is self-contained (data: URIs, no scripts, no external URLs), so KFP's
sandboxed viewer and Vertex's artifact viewer render it; charts scale to the frame.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

from PIL import Image

from src.gan.networks.schedule import GP_EVERY
from src.gan.sampling.render import thumbnail
from src.gan.watching.progress_frames import animation, shown

# One panel per scale: (title, what the y axis measures, {history key: (name in the title, colour)}).
CHARTS = (
    ("Hinge loss", "loss", {"d_loss": ("discriminator", "#d62728"), "g_loss": ("generator", "#1f77b4")}),
    (f"Gradient penalty (every {GP_EVERY}th step)", "penalty", {"gp": ("", "#2ca02c")}),
    ("Discriminator's reconstruction loss", "mean squared error", {"aux": ("", "#9467bd")}),
)  # fmt: skip
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 480, 200, 58, 12, 26, 34
SMOOTHING = 0.6
FRAME_WIDTH = 300  # frames narrower than this are shown at a whole multiple of their size


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


def chart_svg(
    title: str, measure: str, history: list[dict[str, Any]], series: dict[str, tuple[str, str]]
) -> str:
    """One panel on its own axes: a thin line of interval means and a thick smoothed one per series.

    Every panel spans the steps of the whole history, so panels line up.
    """
    lines = {k: [(r["step"], r[k]) for r in history if r.get(k) is not None] for k in series}
    measured = [y for points in lines.values() for _, y in points]
    if not measured:
        return ""
    (x0, x1), (y0, y1) = (history[0]["step"], history[-1]["step"]), (min(measured), max(measured))
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def xy(x: float, y: float) -> str:
        px = LEFT + (x - x0) / ((x1 - x0) or 1) * (WIDTH - LEFT - RIGHT)
        return f"{px:.1f},{TOP + (y1 - y) / (y1 - y0) * (HEIGHT - TOP - BOTTOM):.1f}"

    names = " and ".join(f'<tspan fill="{c}">{n}</tspan>' for n, c in series.values() if n)
    middle = (TOP + HEIGHT - BOTTOM) / 2
    parts = [
        f'<text x="{LEFT}" y="16" font-weight="bold">{html.escape(title)}'
        f"{': ' + names if names else ''}</text>"
        f'<text transform="translate(12,{middle}) rotate(-90)" text-anchor="middle">{measure}</text>'
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 5}" text-anchor="middle">'
        "training step</text>"
    ]
    for y in ticks(y0, y1):
        _, py = xy(x0, y).split(",")
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py}" y2="{py}" stroke="#eee"/>'
            f'<text x="{LEFT - 4}" y="{py}" text-anchor="end" dy="4">{_label(y)}</text>'
        )
    for x in ticks(x0, x1):
        px, _ = xy(x, y0).split(",")
        parts.append(f'<text x="{px}" y="{HEIGHT - 20}" text-anchor="middle">{x:g}</text>')
    for key, (_, colour) in series.items():
        if not lines[key]:
            continue
        steps, raw = zip(*lines[key], strict=True)
        for values, width, opacity in ((raw, 1, 0.35), (smoothed(list(raw)), 2, 1)):
            path = " ".join(xy(x, y) for x, y in zip(steps, values, strict=True))
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" '
                f'stroke-opacity="{opacity}" points="{path}"/>'
            )
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="sans-serif" font-size="12">'
        f"{''.join(parts)}</svg>"
    )


def _data_uri(kind: str, data: bytes) -> str:
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


def _figure(uri: str, width: int, caption: str) -> str:
    return f'<figure><img src="{uri}" width="{width}" alt=""><figcaption>{caption}</figcaption></figure>'


def progress_html(frames: list[dict[str, Any]]) -> str:
    """The latest frame, the animation beside it and a strip of frames with their steps."""
    if not frames:
        return "<p>No progress frames.</p>"
    latest = frames[-1]
    with Image.open(io.BytesIO(latest["png"])) as image:
        native = image.width
    width = native * max(1, FRAME_WIDTH // native)
    strip = "".join(
        _figure(_data_uri("webp", thumbnail(f["png"], 128)), 96, f"step {f['step']}")
        for f in shown(frames)
    )
    still = _figure(_data_uri("png", latest["png"]), width, f"step {latest['step']} (latest)")
    steps = f"steps {frames[0]['step']} to {latest['step']}, looping"
    moving = _figure(_data_uri("webp", animation(frames, native)), width, steps)
    return f"<h3>Samples from fixed latents</h3>{still}{moving}<div>{strip}</div>"


def _rounded(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def _notes(history: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """What the charts leave out: the fixed augmentation probability, skipped penalties."""
    notes = [
        "Thin lines: the mean over each logging interval; thick: smoothed (EMA 0.6).",
        f"Augmentation probability: {summary['aug_prob']:.2f} for the whole run "
        "(lightweight-gan keeps it fixed).",
    ]
    skipped = [row["step"] for row in history if row.get("gp_skipped")]
    if skipped:
        count = sum(row.get("gp_skipped", 0) for row in history)
        notes.append(
            f"{count} gradient penalties were not finite and were left out (in {len(skipped)} "
            f"logging intervals, the first ending at step {skipped[0]})."
        )
    return "".join(f"<p>{note}</p>" for note in notes)


def training_report_html(
    history: list[dict[str, Any]], frames: list[dict[str, Any]], summary: dict[str, Any]
) -> str:
    """The whole page: progress frames, loss charts, summary table."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(_rounded(v)))}</td></tr>"
        for k, v in sorted(summary.items())
    )
    charts = "".join(chart_svg(*chart[:2], history, chart[2]) for chart in CHARTS)
    notes = _notes(history, summary) if history else "<p>No steps were logged.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Training</title><style>"
        "body{font-family:sans-serif;margin:12px;max-width:960px}svg{width:100%;height:auto}"
        "figure{display:inline-block;margin:2px;text-align:center;vertical-align:top}"
        "img{image-rendering:pixelated;max-width:100%;height:auto}"
        "figcaption{font-size:11px;color:#555}.charts{display:grid;gap:8px;"
        "grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr))}"
        "table{border-collapse:collapse;font-size:12px}th,td{padding:2px 8px;text-align:left}"
        f"</style></head><body><h2>Training</h2>{progress_html(frames)}<h3>Losses</h3>{notes}"
        f"<div class='charts'>{charts}</div><h3>Run</h3><table>{rows}</table></body></html>"
    )
