"""`python -m bench.batch_scaling`: the batch job's scenes/s against `predict` in a loop (issue 3).

The scenes are copies of the bundled On Cloud N chips (512² px, one file per band, as the data
set ships); the model is a water model (4 → 64 → 64 → 2, the demo's architecture) trained
briefly on the Sen1Floods11 chip's B2, B3, B4 and B8. Each figure is the best of `--repeats`
rounds after a warm-up round (workers started, torch imported, model loaded); a round runs
every measurement once, in turn, so that all see the same load from other work:

- loop: `open_scene` → `predict_scene` → `write_geotiff` per scene in one process, which
  is `bandfusion predict` without its process start: the floor the batch job is held to;
- `run_batch` on a LocalCluster of 1 and of 2 single-thread worker processes; overhead is the
  1-worker time over the loop's (the same work on one core), speed-up 2 workers over 1;
- a larger run of `--large` scenes on 2 workers, and one 2048² scene split across 2 workers
  against `predict` on it (which already uses both cores through threads).

Wall time is what the targets are about, but on a shared machine it moves with other work;
CPU seconds (every process involved: the loop's, or the client's plus the workers') move far
less, so the overhead is also given in CPU seconds.

Writes the run's table, with the load average, to build/bench/batch-DATE.md (see `bench.report`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
from bandfusion import load_model, open_scene, predict_scene, read_labels, save_model, write_geotiff
from bandfusion.batch.cluster import local_client
from bandfusion.batch.manifest import SceneSpec
from bandfusion.batch.run import BatchResult, run_batch
from bandfusion.engine.train import train
from bandfusion.io.grid import Grid
from distributed import Client

from .report import record

ROOT = Path(__file__).resolve().parent.parent
CHIPS = ROOT / "data" / "oncloudn_s2"
WATER = ROOT / "data" / "sen1floods11_spain"
BANDS = {"B2": "B02", "B3": "B03", "B4": "B04", "B8": "B08"}
COLUMNS = (
    "date",
    "load 1/5/15 min",
    "loop scenes/s",
    "1 w scenes/s",
    "2 w scenes/s",
    "speed-up 2 w / 1 w",
    "overhead 1 w vs loop",
    "CPU ms/scene: loop / 1 w",
    "overhead in CPU",
    "large run: loop / 2 w scenes/s",
    "2048² split: predict / 2 w s",
)
INTRO = f"""
`python -m bench.batch_scaling`: copies of the On Cloud N chips (512² px, 4 band files
each), a 4 → 64 → 64 → 2 water model; each figure the best of 3 interleaved rounds
(`--repeats`) after a warm-up round. *loop*: open_scene → predict_scene → write_geotiff
per scene in one process (`bandfusion predict` without its process start). *1 w / 2 w*:
`run_batch` on a LocalCluster of 1 or 2 single-thread worker processes (client in the same
process, manifest kept after each scene). Overhead: 1-worker time / loop time − 1 (same work,
one core; target ≤ 10 %). Speed-up: 2 w / 1 w (target ≥ 1.6). CPU: seconds of every process
involved (the loop's; the client's and the workers'), which other work on the machine moves
far less than wall time. *split*: one 2048² scene cut into row groups over 2 workers, against
`predict` on it (threads on both cores).

| {" | ".join(COLUMNS)} |
| --- | --- |{" ---: |" * (len(COLUMNS) - 4)} --- | --- |
"""


@dataclass(frozen=True)
class Timing:
    """One measured run: wall seconds, and CPU seconds of every process that took part."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Figures:
    """The best timings of one benchmark run, and the ratios the issue holds them to."""

    scenes: int
    large: int
    load: tuple[float, float, float]
    best: dict[str, Timing]

    def rate(self, name: str) -> float:
        """Scenes per second of run `name`."""
        count = self.large if name.endswith("large") else self.scenes
        return count / self.best[name].wall

    @property
    def speed_up(self) -> float:
        return self.best["one"].wall / self.best["two"].wall

    @property
    def overhead(self) -> float:
        return self.best["one"].wall / self.best["loop"].wall - 1

    @property
    def cpu_overhead(self) -> float:
        return self.best["one"].cpu / self.best["loop"].cpu - 1

    def cpu_ms(self, name: str) -> float:
        return 1000 * self.best[name].cpu / self.scenes

    def report(self) -> str:
        """Human lines for the terminal."""
        return "\n".join(
            [
                "load average at start: " + " ".join(f"{x:.2f}" for x in self.load),
                f"{self.scenes} scenes: loop {self.rate('loop'):.2f} scenes/s, "
                f"1 worker {self.rate('one'):.2f}, 2 workers {self.rate('two'):.2f}",
                f"speed-up 2 workers / 1: {self.speed_up:.2f}x (target >= 1.6)",
                f"overhead 1 worker vs loop: {self.overhead:+.1%} wall (target <= 10 %), "
                f"{self.cpu_overhead:+.1%} CPU ({self.cpu_ms('loop'):.0f} vs "
                f"{self.cpu_ms('one'):.0f} CPU ms a scene)",
                f"{self.large} scenes: loop {self.rate('loop_large'):.2f} scenes/s, "
                f"2 workers {self.rate('two_large'):.2f}",
                f"2048² scene: predict {self.best['predict_big'].wall:.2f} s, "
                f"split on 2 workers {self.best['split_big'].wall:.2f} s",
            ]
        )

    def row(self) -> str:
        """The run's row of the INTRO table."""
        cells = [
            f"{datetime.now():%Y-%m-%d %H:%M}",
            " / ".join(f"{x:.2f}" for x in self.load),
            f"{self.rate('loop'):.2f}",
            f"{self.rate('one'):.2f}",
            f"{self.rate('two'):.2f}",
            f"{self.speed_up:.2f}×",
            f"{self.overhead:+.1%}",
            f"{self.cpu_ms('loop'):.0f} / {self.cpu_ms('one'):.0f}",
            f"{self.cpu_overhead:+.1%}",
            f"{self.large}: {self.rate('loop_large'):.2f} / {self.rate('two_large'):.2f}",
            f"{self.best['predict_big'].wall:.2f} / {self.best['split_big'].wall:.2f}",
        ]
        return f"| {' | '.join(cells)} |"


def water_model(folder: Path) -> Path:
    """A 4-band water model trained briefly on the Sen1Floods11 chip's 10 m bands."""
    scene = open_scene(WATER / "Spain_7370579_S2Hand.tif").sel(band=list(BANDS))
    scene = scene.assign_coords(band=list(BANDS.values()))
    labels = read_labels(WATER / "Spain_7370579_LabelHand.tif", Grid.of(scene), unlabelled=-1)
    result = train(scene, labels, hidden=(64, 64), epochs=5, seed=0)
    return save_model(result.model, folder / "water-model")


def chip_scenes(folder: Path, count: int) -> list[SceneSpec]:
    """`count` scenes: copies of the two chips' band files, alternating."""
    scenes = []
    for i in range(count):
        chip = ("adwp", "akny")[i % 2]
        copy = shutil.copytree(CHIPS / chip, folder / f"{chip}-{i:03d}")
        scenes.append(SceneSpec.of(sorted(copy.glob("B0*.tif")), f"{chip}-{i:03d}.tif"))
    return scenes


def big_scene(path: Path, tiles: int = 4) -> SceneSpec:
    """The adwp chip tiled `tiles` × `tiles` into one 4-band raster (block layout kept)."""
    bands = sorted((CHIPS / "adwp").glob("B0*.tif"))
    data = np.tile(open_scene(bands).values, (1, tiles, tiles))
    with rasterio.open(bands[0]) as src:
        profile = {**src.profile, "count": 4, "height": data.shape[1], "width": data.shape[2]}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(BANDS.values())
    return SceneSpec.of(path)


def predict_loop(scenes: list[SceneSpec], model_dir: Path, out: Path) -> Timing:
    """Map every scene one after another in this process, as `bandfusion predict` does."""
    out.mkdir(exist_ok=True)
    model = load_model(model_dir)
    wall, cpu = time.perf_counter(), time.process_time()
    for scene in scenes:
        classes = predict_scene(open_scene(list(scene.inputs)), model)
        write_geotiff(classes, out / scene.output)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def run_forced(
    client: Client, scenes: list[SceneSpec], model: Path | str, out: Path | str
) -> Timing:
    """One `run_batch` over `scenes` with everything redone; CPU of client and workers."""
    workers_cpu = client.run(time.process_time)
    cpu = time.process_time()
    result: BatchResult = run_batch(scenes, model, out, client, force=True)
    cpu = time.process_time() - cpu
    if result.failed:
        raise SystemExit(f"bench: {result.failed[0].output}: {result.failed[0].error}")
    after = client.run(time.process_time)
    return Timing(result.seconds, cpu + sum(after[w] - workers_cpu[w] for w in after))


def interleaved_best(runs: dict[str, Callable[[], Timing]], repeats: int) -> dict[str, Timing]:
    """Best wall and CPU seconds of `repeats` rounds of every run; a round runs each once, in
    turn, so all see the same load from other work. A first, warm-up round is not counted."""
    timings: dict[str, list[Timing]] = {name: [] for name in runs}
    for _ in range(repeats + 1):
        for name, run in runs.items():
            timings[name].append(run())
    best = {}
    for name, measured in timings.items():
        kept = measured[1:]
        walls = " ".join(f"{t.wall:6.2f}" for t in kept)
        print(f"  {name:<12} wall {walls} s   CPU " + " ".join(f"{t.cpu:6.2f}" for t in kept))
        best[name] = Timing(min(t.wall for t in kept), min(t.cpu for t in kept))
    return best


def measure(args: argparse.Namespace, work: Path) -> Figures:
    """Every figure, on scenes and a model made in `work`; both clusters stay up throughout."""
    load = os.getloadavg()
    model = water_model(work)
    large = chip_scenes(work, max(args.large, args.scenes))
    scenes = large[: args.scenes]
    big = [big_scene(work / "big.tif")]
    with local_client(1, 1) as one, local_client(2, 1) as two:
        runs = {
            "loop": lambda: predict_loop(scenes, model, work / "loop"),
            "one": lambda: run_forced(one, scenes, model, work / "one"),
            "two": lambda: run_forced(two, scenes, model, work / "two"),
            "loop_large": lambda: predict_loop(large, model, work / "loop"),
            "two_large": lambda: run_forced(two, large, model, work / "large"),
            "predict_big": lambda: predict_loop(big, model, work / "loop"),
            "split_big": lambda: run_forced(two, big, model, work / "big"),
        }
        best = interleaved_best(runs, args.repeats)
    return Figures(len(scenes), len(large), load, best)


def main() -> None:
    """Measure, print, and record the run in build/bench/."""
    parser = argparse.ArgumentParser(prog="python -m bench.batch_scaling", description=__doc__)
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--large", type=int, default=64, help="scenes in the larger run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-record", action="store_true", help="do not write the run's table to build/bench/"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(args, Path(tmp))
    print(figures.report())
    if not args.no_record:
        command = " ".join(["python -m bench.batch_scaling", *sys.argv[1:]])
        path = record("batch", datetime.now(), command, f"{INTRO.strip()}\n{figures.row()}")
        print(f"recorded in {path}")


if __name__ == "__main__":
    main()
