"""Fits side by side in threads: results come back in order and equal to fits run one after
another, bit for bit; a failure stops the others and is raised; a GPU runs tasks in turn."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from bandfusion.models import threads
from bandfusion.models.threads import FitCancelled, side_by_side
from bandfusion.models.training import FitSettings, fit_pixels

CPU = torch.device("cpu")


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers whatever this machine's affinity, so the threaded path always runs."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)


@pytest.mark.usefixtures("two_cores")
def test_fits_side_by_side_equal_fits_one_after_another() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(400) % 3
    x = (y[:, None] * 2.0 + rng.normal(size=(400, 5))).astype(np.float32)
    settings = [
        FitSettings(hidden=(8,), epochs=5, batch_size=32, dropout=0.3, seed=seed)
        for seed in range(3)
    ]

    def fit(index: int) -> threads.Task[torch.Tensor]:
        def run(stop: threading.Event | None) -> torch.Tensor:
            net = fit_pixels(x, y, n_classes=3, settings=settings[index], stop=stop).net
            return net(torch.from_numpy(x)).detach()

        return run

    tasks = [fit(i) for i in range(3)]
    together = side_by_side(tasks, CPU)
    apart = [task(None) for task in tasks]
    for parallel, serial in zip(together, apart, strict=True):
        torch.testing.assert_close(parallel, serial, rtol=0, atol=0)
    assert not torch.equal(together[0], together[1])  # seeds differ, so do the fits


@pytest.mark.usefixtures("two_cores")
def test_a_failure_stops_the_other_tasks_and_is_raised() -> None:
    stopped = threading.Event()

    def fails(_stop: threading.Event | None) -> int:
        time.sleep(0.05)
        raise RuntimeError("diverged")

    def waits(stop: threading.Event | None) -> int:
        assert stop is not None
        if not stop.wait(10):
            return 1
        stopped.set()
        raise FitCancelled("stopped")

    with pytest.raises(RuntimeError, match="diverged"):
        side_by_side([fails, waits], CPU)
    assert stopped.is_set()


def test_results_keep_the_tasks_order_and_a_gpu_runs_them_in_turn() -> None:
    ran: list[int] = []

    def task(index: int) -> threads.Task[int]:
        def run(stop: threading.Event | None) -> int:
            ran.append(index)
            return index * 10

        return run

    assert side_by_side([task(i) for i in range(5)], CPU) == [0, 10, 20, 30, 40]
    ran.clear()
    assert side_by_side([task(i) for i in range(3)], torch.device("meta")) == [0, 10, 20]
    assert ran == [0, 1, 2]
