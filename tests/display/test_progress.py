"""Progress as the CLI shows it: bars on a terminal, one line a stage elsewhere, notes always."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bandfusion.display.progress import ProgressDisplay
from bandfusion.progress import Step, counter

STEPS = [
    Step("scenes", 0, 3, "scene"),
    Step("scenes", 1, 3, "scene"),
    Step("scenes", 1, 3, "scene", note="failed: b.tif: b.tif: not a raster"),
    Step("train", 1, 10, "epoch", {"loss": 0.5, "val_f1": 0.75}),
    Step("train", 1, 10, "epoch", {"loss": 0.25, "val_f1": 0.875}),
]


def show(display: ProgressDisplay, steps: list[Step]) -> None:
    with display:
        for step in steps:
            display(step)


def test_without_bars_each_stage_is_one_line_when_the_display_closes(capsys):
    show(ProgressDisplay(bars=False), STEPS)
    assert capsys.readouterr().err.splitlines() == [
        "failed: b.tif: b.tif: not a raster",
        "scenes: 2/3 scene",
        "train: 2/10 epoch, loss 0.2500, val_f1 0.8750",
    ]


@pytest.mark.parametrize("bars", [True, False])
def test_quiet_shows_the_notes_only(capsys, bars: bool):
    show(ProgressDisplay(quiet=True, bars=bars), STEPS)
    assert capsys.readouterr().err == "failed: b.tif: b.tif: not a raster\n"


def test_bars_count_the_steps_and_show_the_latest_figures(capsys):
    display = ProgressDisplay(bars=True)
    with display:
        for step in STEPS:
            display(step)
        bars = {name: stage.bar for name, stage in display._stages.items()}
        assert [(bar.n, bar.total, bar.unit) for bar in bars.values()] == [
            (2, 3, "scene"),
            (2, 10, "epoch"),
        ]
        assert bars["train"].postfix == "loss=0.2500, val_f1=0.8750"
    err = capsys.readouterr().err
    assert "\rscenes:   0%" in err and "failed: b.tif: b.tif: not a raster" in err


def test_a_counter_announces_its_stage_and_counts_into_it(capsys):
    steps: list[Step] = []
    count = counter(steps.append, "classes", total=10, unit="px")
    assert count is not None and counter(None, "classes") is None
    count(4)
    count(6)
    assert steps == [Step("classes", n, 10, "px") for n in (0, 4, 6)]
    show(ProgressDisplay(bars=False), steps)
    assert capsys.readouterr().err == "classes: 10/10 px\n"


def test_on_a_pipe_the_default_display_draws_no_bar():
    """stderr is a pipe, as in a log file or CI: no carriage-return redraws, one line a stage."""
    script = (
        "from bandfusion.display.progress import ProgressDisplay\n"
        "from bandfusion.progress import counter\n"
        "with ProgressDisplay() as display:\n"
        "    count = counter(display, 'classes', total=1000, unit='px')\n"
        "    for _ in range(10):\n"
        "        count(100)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "classes: 1,000/1,000 px\n"
