"""The default fit's time budget (issue 17): `SpectralFusionClassifier()` on 100,000 labelled
pixels of the water chip (13 bands), against one fit of the same settings in the same run.

`python -m bench.fit_budget` prints the wall and CPU seconds of the default fit (the search,
then its two best candidates fitted side by side and blended), of the search's best alone
(`blend=1`), of `search=False` (one fit, the floor), and one fit of each candidate. Fits run
one thread each, side by side on the usable cores, so wall time is the budget's measure and
CPU time counts the work. Which candidates the search keeps depends on the data: the search's
own wall time plus the slowest candidate's fit bounds the default fit on a table of this size
where two cores run a blend's two fits at once.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.parallel import usable_cores
from bandfusion.models.selection import CANDIDATES

from .defaults_cv import spain

BUDGET_S = 60.0


def timed_fit(
    x: np.ndarray, y: np.ndarray, search: bool, **overrides: Any
) -> tuple[float, float, str]:
    """Wall and CPU seconds of one estimator fit, and what its search kept ("" without)."""
    wall, cpu = time.perf_counter(), time.process_time()
    estimator = SpectralFusionClassifier(search=search, **overrides).fit(x, y)
    record = estimator.selection_ or {}
    chosen = " and ".join(record.get("blended", [record.get("chosen", "")]))
    return time.perf_counter() - wall, time.process_time() - cpu, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=100_000)
    args = parser.parse_args()
    x, y, _ = spain()
    rows = np.random.default_rng(0).choice(len(y), args.pixels, replace=False)
    x, y = x[rows], y[rows]
    load = os.getloadavg()[0]
    default = timed_fit(x, y, search=True)
    alone = timed_fit(x, y, search=True, blend=1)
    single = timed_fit(x, y, search=False)
    print(f"{args.pixels} pixels × {x.shape[1]} bands, {usable_cores()} cores, load {load:.1f}")
    print("| fit | wall s | CPU s |\n| --- | --- | --- |")
    print(f"| default (search, blended {default[2]}) | {default[0]:.1f} | {default[1]:.1f} |")
    print(f"| search's best alone (`blend=1`, {alone[2]}) | {alone[0]:.1f} | {alone[1]:.1f} |")
    print(f"| one fit (`search=False`) | {single[0]:.1f} | {single[1]:.1f} |")
    fits = {name: timed_fit(x, y, False, **o)[0] for name, o in CANDIDATES.items()}
    search = alone[0] - fits[alone[2]]
    print("| candidate | one fit, wall s |\n| --- | --- |")
    for name, seconds in fits.items():
        print(f"| {name} | {seconds:.1f} |")
    worst = search + max(fits.values())
    print(f"the search: {search:.1f} s wall; default at worst about {worst:.1f} s wall")
    print(f"budget {BUDGET_S:.0f} s wall")


if __name__ == "__main__":
    main()
