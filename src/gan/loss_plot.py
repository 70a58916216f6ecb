"""Loss curves as a self-contained SVG page (no plotting library needed)."""

from __future__ import annotations

import html
import json

WIDTH, HEIGHT, MARGIN = 640, 300, 40
COLOURS = {"d_loss": "#d62728", "g_loss": "#1f77b4"}


def _polyline(
    points: list[tuple[float, float]], x_range: tuple[float, float], y_range: tuple[float, float]
) -> str:
    (x0, x1), (y0, y1) = x_range, y_range
    scale_x = (WIDTH - 2 * MARGIN) / ((x1 - x0) or 1)
    scale_y = (HEIGHT - 2 * MARGIN) / ((y1 - y0) or 1)
    return " ".join(
        f"{MARGIN + (x - x0) * scale_x:.1f},{HEIGHT - MARGIN - (y - y0) * scale_y:.1f}"
        for x, y in points
    )


def loss_curves_html(history: list[dict[str, float]], summary: dict[str, object]) -> str:
    """An HTML page with D and G losses against step, and the run's summary."""
    lines, legend = [], []
    if history:
        steps = [row["step"] for row in history]
        values = [row[key] for row in history for key in COLOURS]
        x_range, y_range = (min(steps), max(steps)), (min(values), max(values))
        for index, (key, colour) in enumerate(COLOURS.items()):
            points = _polyline([(row["step"], row[key]) for row in history], x_range, y_range)
            lines.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            )
            legend.append(f'<text x="{MARGIN + 90 * index}" y="20" fill="{colour}">{key}</text>')
        legend.append(
            f'<text x="{MARGIN}" y="{HEIGHT - 8}">steps {x_range[0]:g}..{x_range[1]:g}, '
            f"loss {y_range[0]:.2f}..{y_range[1]:.2f}</text>"
        )
    else:
        legend.append(f'<text x="{MARGIN}" y="40">no steps were run</text>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="white" stroke="#ccc"/>{"".join(lines)}{"".join(legend)}</svg>'
    )
    details = html.escape(json.dumps(summary, sort_keys=True, default=str))
    return f"<!doctype html><html><body><h3>Training losses</h3>{svg}<p><code>{details}</code></p></body></html>"
