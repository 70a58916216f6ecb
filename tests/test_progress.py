"""Progress figures a person reads: a rate that leaves out warm-up, an ETA from it."""

from __future__ import annotations

import io

from src.backends.console import Console
from src.common.rate import MovingRate


def test_moving_rate_leaves_out_the_slow_first_step():
    rate = MovingRate(window=5)
    rate.update(1, now=10.0)  # step 1 ended after 10 s of warm-up
    for step in range(2, 6):
        rate.update(step, now=10.0 + (step - 1) * 0.5)  # then 2 steps/s
    assert rate.rate == 2.0
    assert rate.eta(10) == "5s"


def test_moving_rate_follows_the_recent_window():
    rate = MovingRate(window=2)
    for step, now in ((1, 0.0), (2, 1.0), (3, 2.0), (4, 2.25), (5, 2.5)):
        rate.update(step, now=now)
    assert rate.rate == 4.0  # the last two steps took 0.25 s each


def test_moving_rate_without_two_points_has_no_eta():
    rate = MovingRate()
    rate.update(1, now=1.0)
    assert rate.rate == 0.0 and rate.eta(5) == "?"


def test_console_prints_few_training_lines_without_colour(tmp_path):
    out = io.StringIO()
    console = Console(tmp_path, out)
    console.feed("\x1b[92m12:00:00.000 - INFO - Executing task \x1b[96m'train-gan'\x1b[0m\n")
    for step in range(1, 101):
        console.feed(
            f"    2026 INFO src.gan.training.loop: step {step}/100  d=1.0 g=1.0  2.0 steps/s  ETA 1s\n"
        )
    console.feed("12:00:09.000 - INFO - Task 'train-gan' finished with status SUCCESS\n")
    console.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "train-gan: started" and lines[-1].startswith("train-gan: done in")
    assert len([line for line in lines if "step " in line]) == 5
    assert "\x1b" not in out.getvalue() and "\x1b" not in (tmp_path / "train-gan.log").read_text()
    assert len((tmp_path / "train-gan.log").read_text().splitlines()) == 102


def test_a_slow_run_without_a_terminal_still_shows_a_line_every_half_minute(tmp_path):
    # Given a 300-step run (milestones every 60 steps) whose steps take 10 s each
    out, now = io.StringIO(), [0.0]
    console = Console(tmp_path, out, clock=lambda: now[0])
    console.feed("12:00:00.000 - INFO - Executing task 'train-gan'\n")
    shown = []
    for step in range(1, 31):
        now[0] = step * 10.0
        before = out.getvalue()
        console.feed(
            f"    2026 INFO src.gan.training.loop: step {step}/300  d=1 g=1  0.1 steps/s  ETA 1h\n"
        )
        if out.getvalue() != before:
            shown.append(now[0])
    console.close()
    # Then the first 5 minutes are not silent: a line at least every 30 s after the first step
    gaps = [b - a for a, b in zip([10.0, *shown], shown, strict=False)]
    assert shown and max(gaps) <= 30.0 and shown[-1] >= 280.0
