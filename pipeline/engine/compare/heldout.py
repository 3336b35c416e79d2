"""Test pixels behind a seal: nothing can read them until every method of a seed is fitted.

A benchmark is honest only if no choice (a fit, an early stop, a model selection inside a fit)
sees the pixels it is scored on. The runner reads each seed's test pixels through `HeldOut`,
which refuses to read them until the runner declares the fitting done, so a change that moves
the read earlier (to tune on them, or to fit transductively) fails loudly instead of
inflating the scores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class HeldOutReadEarly(RuntimeError):
    """Test pixels were asked for before every fit of their seed had finished."""


class HeldOut:
    """One seed's test pixels (X, y), read lazily by `read`, only after `release`."""

    def __init__(self, read: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        self._read = read
        self._released = False
        self._pixels: tuple[np.ndarray, np.ndarray] | None = None

    def release(self) -> None:
        """Declare every fit of the seed done: from now on the test pixels may be read."""
        self._released = True

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """The test pixels (X, y); HeldOutReadEarly before `release`."""
        if not self._released:
            raise HeldOutReadEarly("test pixels read before every method was fitted")
        if self._pixels is None:
            self._pixels = self._read()
        return self._pixels
