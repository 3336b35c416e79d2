"""A tqdm bar over dask tasks, for computations whose natural unit is a chunk."""

from __future__ import annotations

from typing import Any

from dask.callbacks import Callback
from tqdm.auto import tqdm


class TaskProgress(Callback):
    """Counts finished dask tasks of the graph being computed on a tqdm bar (stderr)."""

    def __init__(self, desc: str, *, disable: bool = False) -> None:
        super().__init__()
        self.bar = tqdm(desc=desc, unit="task", disable=disable, leave=False)

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        self.bar.reset(total=sum(len(state[k]) for k in ("ready", "waiting", "running")))

    def _posttask(self, *_: Any) -> None:
        self.bar.update()

    def _finish(self, *_: Any) -> None:
        self.bar.close()
