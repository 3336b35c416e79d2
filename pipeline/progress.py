"""The one progress mechanism: long work reports `Step`s to a plain callback, a `Progress`.

Engine, batch and models functions take `progress: Progress | None` and call it as their work
advances; they never draw anything. What is shown, and how, is the caller's business: the CLI
passes `bandfusion.display.progress.ProgressDisplay`, which draws tqdm bars on a terminal (plain
lines elsewhere, nothing but notes with --quiet); a test can pass `list.append`.

It sits at the package root, beside errors.py, so that every layer may import it: `io` and
`models` included (`models` imports nothing else of bandfusion). It imports nothing but the
standard library, so importing it costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """One report of work advancing in a named stage.

    `stage` names what advances ("pixels", "scenes", "train"); it is also the bar's label.
    `done` counts the units finished since the stage's previous step (0 for a step that only
    announces the stage, its size or a note). `total` is the stage's size in units as known
    now (None: unknown). `unit` says what one unit is ("px", "scene", "epoch", "task").
    `info` holds the latest figures worth showing beside the bar (a training epoch's loss);
    `note` a line worth keeping in the log (a failed scene), shown even when bars are not.
    """

    stage: str
    done: int = 0
    total: int | None = None
    unit: str = ""
    info: Mapping[str, float | int | str] = field(default_factory=dict)
    note: str = ""


Progress = Callable[[Step], None]
"""Called with each `Step`, from whichever thread does the work; it must return quickly."""

Count = Callable[[int], None]
"""A stage already named, told `n` more units are done: what writers call as they count."""


def silent(step: Step) -> None:
    """A `Progress` that shows nothing: what a function reports to when it is given none."""


def counter(
    progress: Progress | None, stage: str, *, total: int | None = None, unit: str = ""
) -> Count | None:
    """A `Count` reporting to `progress` as steps of `stage` (None when `progress` is None).

    The stage is announced at once, so that it is shown (at 0) before its first unit is done.
    """
    if progress is None:
        return None
    progress(Step(stage, 0, total, unit))

    def count(n: int) -> None:
        progress(Step(stage, n, total, unit))

    return count
