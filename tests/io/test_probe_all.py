"""bandfusion.io.remote_bytes.probe_all: many inputs or outputs probed at once."""

from __future__ import annotations

import threading

from bandfusion.io.remote_bytes import PROBE_THREADS, probe_all


def test_probes_run_together_and_answer_in_order() -> None:
    """Every round of PROBE_THREADS probes meets at a barrier: it breaks (BrokenBarrierError)
    unless that many run at once; the count shows no more do."""
    together = threading.Barrier(PROBE_THREADS, timeout=60)
    lock = threading.Lock()
    running = peak = 0

    def probe(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        together.wait()
        with lock:
            running -= 1
        return item * item

    items = list(range(2 * PROBE_THREADS))
    assert probe_all(probe, items) == [item * item for item in items]
    assert peak == PROBE_THREADS


def test_one_probe_or_none_runs_in_the_caller() -> None:
    callers: list[str] = []

    def probe(item: str) -> str:
        callers.append(threading.current_thread().name)
        return item

    assert probe_all(probe, []) == []
    assert probe_all(probe, ["a"]) == ["a"]
    assert callers == [threading.current_thread().name]
