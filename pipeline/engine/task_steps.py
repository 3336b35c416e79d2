"""Dask computations reported as progress: finished tasks become `Step`s of one stage.

For work whose natural unit is a chunk (evaluating a map, reading sampled pixels), the task
graph is the only measure of how far it got. Several computations in one stage add up: the
stage's total grows with each graph, so the count never runs backwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from bandfusion.progress import Progress, Step
from dask.callbacks import Callback


class _TaskSteps(Callback):
    """A dask callback telling `progress` of every finished task of the graphs it sees."""

    def __init__(self, progress: Progress, stage: str) -> None:
        super().__init__()
        self.progress = progress
        self.stage = stage
        self.total = 0

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        self.total += sum(len(state[k]) for k in ("ready", "waiting", "running"))
        self.progress(Step(self.stage, 0, self.total, "task"))

    def _posttask(self, *_: Any) -> None:
        self.progress(Step(self.stage, 1, self.total, "task"))


@contextmanager
def report_tasks(progress: Progress | None, stage: str) -> Iterator[None]:
    """Within the block, every dask task finished in this process is a step of `stage`."""
    with _TaskSteps(progress, stage) if progress is not None else nullcontext():
        yield
