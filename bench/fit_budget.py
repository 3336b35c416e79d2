"""The default fit's time budget (issue 17): `SpectralFusionClassifier()` on 100,000 labelled
pixels of the water chip (13 bands), against one fit of the same settings in the same run.

`python -m bench.fit_budget` prints the wall and CPU seconds of the default fit (search, then
the chosen candidate's fit), of `search=False` (one fit, the floor), and their ratio: what the
search costs in fits. Which candidate the search chooses depends on the data, so it also times
one fit of each candidate: the search's own cost plus the slowest of them is the default fit's
worst case on a table of this size. Training runs on one thread, so on an idle machine
wall ≈ CPU time.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.selection import CANDIDATES

from .defaults_cv import spain

BUDGET_S = 60.0


def timed_fit(
    x: np.ndarray, y: np.ndarray, search: bool, **overrides: Any
) -> tuple[float, float, str]:
    """Wall and CPU seconds of one estimator fit, and what its search chose ("" without)."""
    wall, cpu = time.perf_counter(), time.process_time()
    estimator = SpectralFusionClassifier(search=search, **overrides).fit(x, y)
    chosen = estimator.selection_["chosen"] if estimator.selection_ else ""
    return time.perf_counter() - wall, time.process_time() - cpu, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=100_000)
    args = parser.parse_args()
    x, y, _ = spain()
    rows = np.random.default_rng(0).choice(len(y), args.pixels, replace=False)
    load = os.getloadavg()[0]
    default = timed_fit(x[rows], y[rows], search=True)
    single = timed_fit(x[rows], y[rows], search=False)
    print(f"{args.pixels} pixels × {x.shape[1]} bands, load (1 min) {load:.1f} at the start")
    print("| fit | wall s | CPU s |\n| --- | --- | --- |")
    print(f"| default (search, chose {default[2]}) | {default[0]:.1f} | {default[1]:.1f} |")
    print(f"| one fit (`search=False`) | {single[0]:.1f} | {single[1]:.1f} |")
    print(f"default / one fit: {default[1] / single[1]:.2f} (CPU); budget {BUDGET_S:.0f} s")
    fits = {name: timed_fit(x[rows], y[rows], False, **o)[1] for name, o in CANDIDATES.items()}
    search = default[1] - fits[default[2]]
    print("| candidate | one fit, CPU s | default fit were it chosen, CPU s |\n| --- | --- | --- |")
    for name, seconds in fits.items():
        print(f"| {name} | {seconds:.1f} | {search + seconds:.1f} |")
    print(f"the search itself: {search:.1f} s CPU; worst case {search + max(fits.values()):.1f} s")


if __name__ == "__main__":
    main()
