"""Fits side by side in worker processes: results come back in order and equal to fits run
one after another, bit for bit; a worker's error arrives whole; a failure in the caller kills
the workers at once; a GPU, or a single core, runs the tasks in turn."""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import pytest
import torch
from bandfusion.errors import SettingError
from bandfusion.models import parallel
from bandfusion.models.parallel import side_by_side
from bandfusion.models.training import FitSettings, fit_pixels

CPU = torch.device("cpu")


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cores whatever this machine's affinity, so that a worker process always runs."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)


def _fitted_logits(x: np.ndarray, y: np.ndarray, seed: int) -> torch.Tensor:
    settings = FitSettings(hidden=(8,), epochs=5, batch_size=32, dropout=0.3, seed=seed)
    net = fit_pixels(x, y, n_classes=3, settings=settings).net
    return net(torch.from_numpy(x)).detach()


@pytest.mark.usefixtures("two_cores")
def test_fits_side_by_side_equal_fits_one_after_another() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(400) % 3
    x = (y[:, None] * 2.0 + rng.normal(size=(400, 5))).astype(np.float32)
    tasks = [partial(_fitted_logits, x, y, seed) for seed in range(3)]
    together = side_by_side(tasks, CPU)
    apart = [task() for task in tasks]
    for parallel_fit, serial_fit in zip(together, apart, strict=True):
        torch.testing.assert_close(parallel_fit, serial_fit, rtol=0, atol=0)
    assert not torch.equal(together[0], together[1])  # seeds differ, so do the fits


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _diverge() -> float:
    raise SettingError("learning_rate", 3.0, "the loss diverged")


@pytest.mark.usefixtures("two_cores")
def test_a_workers_error_arrives_whole() -> None:
    with pytest.raises(SettingError) as raised:
        side_by_side([partial(_sleep, 0.0), _diverge], CPU)
    assert (raised.value.setting, raised.value.value) == ("learning_rate", 3.0)
    assert str(raised.value) == "learning_rate=3.0: the loss diverged"
    assert side_by_side([partial(_sleep, 0.0), partial(_sleep, 0.01)], CPU) == [0.0, 0.01]


@pytest.mark.usefixtures("two_cores")
def test_a_failure_in_the_caller_kills_the_workers_at_once() -> None:
    start = time.perf_counter()
    with pytest.raises(SettingError):
        side_by_side([_diverge, partial(_sleep, 60.0)], CPU)
    assert time.perf_counter() - start < 30  # the sleeping worker was killed, not awaited


def test_results_keep_the_tasks_order_and_a_gpu_runs_them_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[int] = []

    def task(index: int) -> int:
        ran.append(index)
        return index * 10

    assert side_by_side([partial(task, i) for i in range(3)], torch.device("meta")) == [0, 10, 20]
    assert ran == [0, 1, 2]  # in this process, in order
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    assert side_by_side([partial(task, i) for i in range(3)], CPU) == [0, 10, 20]
    assert ran == [0, 1, 2] * 2
