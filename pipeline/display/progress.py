"""Progress as the CLI shows it: the one place that turns `Step`s into tqdm bars or lines.

On a terminal each stage is a tqdm bar on stderr, redrawn in place. Where stderr is not a
terminal (a pipe, a log file, CI) redrawing would fill the log with carriage returns, so no bar
is drawn: each stage prints one line with its final count when the display closes. Notes
(a failed scene, the cluster's size) are lines in both cases, and stay with `quiet`, which
silences everything else.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from bandfusion.progress import Step
from tqdm.auto import tqdm


class ProgressDisplay:
    """A `Progress` callback for the CLI (and notebooks): pass it as `progress=`.

    `bars`: draw tqdm bars (True), one line a stage (False) or decide by whether stderr is a
    terminal (None). Use it as a context manager, so bars close and lines are printed.
    """

    def __init__(self, *, quiet: bool = False, bars: bool | None = None) -> None:
        self.quiet = quiet
        self.bars = sys.stderr.isatty() if bars is None else bars
        self._stages: dict[str, _Stage] = {}
        self._lock = threading.Lock()

    def __call__(self, step: Step) -> None:
        with self._lock:
            if step.note:
                tqdm.write(step.note, file=sys.stderr)
            if self.quiet:
                return
            stage = self._stages.get(step.stage)
            if stage is None:
                stage = self._stages[step.stage] = _Stage(step, self.bars)
            stage.advance(step)

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the bars (or print each stage's line), in the order the stages began."""
        with self._lock:
            for stage in self._stages.values():
                stage.close()
            self._stages.clear()


class _Stage:
    """One stage's count: a live tqdm bar, or a tally printed as one line at the end."""

    def __init__(self, first: Step, bars: bool) -> None:
        self.name, self.unit = first.stage, first.unit
        self.done, self.total = 0, first.total
        self.info: dict[str, float | int | str] = {}
        self.bar = (
            tqdm(
                desc=first.stage,
                total=first.total,
                unit=first.unit or "it",
                unit_scale=first.unit == "px",
                file=sys.stderr,
                leave=False,
            )
            if bars
            else None
        )

    def advance(self, step: Step) -> None:
        self.done += step.done
        if step.info:
            self.info = dict(step.info)
        if self.bar is None:
            self.total = step.total
            return
        if step.total != self.bar.total:
            self.bar.total = step.total
            self.bar.refresh()
        if step.info:
            self.bar.set_postfix({k: _figure(v) for k, v in self.info.items()}, refresh=False)
        self.bar.update(step.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            return
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        figures = "".join(f", {key} {_figure(value)}" for key, value in self.info.items())
        print(f"{self.name}: {count} {self.unit}".rstrip() + figures, file=sys.stderr)


def _figure(value: float | int | str) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
