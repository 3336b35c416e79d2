"""`python -m bench` (`make bench`): every engine figure and its ratio, in one run.

Each figure runs in its own process (see `bench.figures`) so its peak RSS is its own; the load
average is printed with each, since other work on the machine slows every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
from bandfusion.models.inference import cpu_runs_bf16

from . import jp2
from .report import Figure, cuda_ratios, format_table, ratios, record
from .store import run_store
from .synthetic import CACHE, model_path, mosaic_path, scene_path

SENTINEL2_SIZE = 10980
NO_BF16 = (
    "bf16 figures skipped: this CPU has no native bfloat16 (AVX-512 or AMX), and bandfusion "
    "refuses --precision bf16 on it"
)
NO_JP2 = "JP2 figures skipped: no Sentinel-2 L2A SAFE with 60 m JP2 bands in data/ or shared/data"


def run_figure(
    name: str,
    scene: Path,
    model: Path,
    out: Path,
    precision: str,
    label: str | None = None,
    device: str = "cpu",
) -> Figure:
    """Run one figure in a child process, which reports its own time and peak RSS.

    `label` names it in the tables (default: the figure's name, with the device where it is a
    GPU and the precision for some).
    """
    warm_page_cache(scene)
    load = os.getloadavg()[0]
    argv = [sys.executable, "-m", "bench.figures", name, "--scene", str(scene)]
    argv += ["--model", str(model), "--out", str(out), "--precision", precision]
    argv += ["--device", device]
    child = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        raise SystemExit(f"bench: figure {name} failed (exit {child.returncode})")
    measured = json.loads(lines[-1])
    if label is None:
        label = f"{name} {precision}" if name in {"model", "peak", "e2e"} else name
        label = label if device == "cpu" else f"{label} {device}"
    figure = Figure(label, measured["seconds"], measured["rss_mb"], load, measured)
    print(f"  {figure.describe()}", flush=True)
    return figure


def warm_page_cache(path: Path) -> None:
    """Read `path` (a file, or a folder's files) once, so that no figure pays for reading its
    scene from disk.

    The baseline and the 4× scene push earlier scenes out of the page cache: in the next run the
    first 50 %-nodata round read its scene from disk and lost about 10 % against the others.
    """
    buffer = bytearray(16 << 20)
    for file_path in sorted(path.iterdir()) if path.is_dir() else [path]:
        with file_path.open("rb") as file:
            while file.readinto(buffer):
                pass


def run_alternating(
    plan: dict[str, tuple[str, Path, Path]], model: Path, repeats: int, device: str = "cpu"
) -> dict[str, Figure]:
    """Run each labelled (figure, scene, output) of `plan` in turn, `repeats` rounds (fp32).

    Alternating puts every figure under the same machine conditions, which drift on a shared
    machine by more than the differences being measured, and lets ratios pair each round's
    runs. Each label's figure is its median run, holding every run's time in `runs_s`, with
    the highest peak RSS of its runs (a peak is the worst seen).
    """
    runs: dict[str, list[Figure]] = {label: [] for label in plan}
    for _ in range(repeats):
        for label, (name, scene, out) in plan.items():
            runs[label].append(run_figure(name, scene, model, out, "fp32", label, device))
    medians = {}
    for label, figures in runs.items():
        median = sorted(figures, key=lambda f: f.seconds)[(len(figures) - 1) // 2]
        median.measured["runs_s"] = [f.seconds for f in figures]
        median.rss_mb = max(f.rss_mb for f in figures)
        medians[label] = median
    return medians


def label_counts(first: Path, second: Path | None = None) -> tuple[int, int]:
    """Valid pixels of class map `first` (not nodata, 255), and on how many `second` agrees."""
    with rasterio.open(first) as a, ExitStack() as files:
        b = files.enter_context(rasterio.open(second)) if second is not None else None
        valid = same = 0
        for _, window in a.block_windows(1):
            x = a.read(1, window=window)
            mask = x != 255
            valid += int(np.count_nonzero(mask))
            if b is not None:
                same += int(np.count_nonzero(x[mask] == b.read(1, window=window)[mask]))
    return valid, same


def agreement(first: Path, second: Path) -> float:
    """Share of the valid pixels of `first` on which the two class maps agree."""
    valid, same = label_counts(first, second)
    return same / max(valid, 1)


def differing_pixels(first: Path, second: Path) -> int:
    """Valid pixels of class map `first` on which `second` has another value."""
    valid, same = label_counts(first, second)
    return valid - same


def run_cuda(scene: Path, model: Path, out: Path, repeats: int) -> tuple[list[Figure], dict]:
    """The GPU figures: peaks, the kernel in every precision, the I/O floor alternated with the
    fp32 engine, the half-precision engine, and the CPU engine whose map fp32 must equal."""
    figures = [
        run_figure(name, scene, model, out / name, precision, device="cuda")
        for name in ("peak", "model")
        for precision in ("fp32", "bf16", "fp16")
    ]
    plan = {
        "io": ("io", scene, out / "io.tif"),
        "e2e fp32 cuda": ("e2e", scene, out / "cuda-fp32.tif"),
    }
    figures += run_alternating(plan, model, repeats, "cuda").values()
    for precision in ("bf16", "fp16"):
        figures.append(
            run_figure("e2e", scene, model, out / f"cuda-{precision}.tif", precision, None, "cuda")
        )
    figures.append(run_figure("e2e", scene, model, out / "cpu-fp32.tif", "fp32"))
    reference = out / "cpu-fp32.tif"
    checks = {
        "valid_px": float(label_counts(reference)[0]),
        "cuda_fp32_differing_px": float(differing_pixels(reference, out / "cuda-fp32.tif")),
        **{
            f"{p}_same_label": agreement(reference, out / f"cuda-{p}.tif") for p in ("bf16", "fp16")
        },
    }
    return figures, checks


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return int(text)


def main() -> None:
    """Generate (or reuse) the scene, run every figure, print ratios, record the run."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", type=int, default=SENTINEL2_SIZE, help="scene edge in pixels")
    parser.add_argument("--bands", type=int, default=12)
    parser.add_argument("--no-baseline", action="store_true", help="skip the rioxarray run")
    parser.add_argument(
        "--no-large", action="store_true", help="skip the memory figure on a 4× larger scene"
    )
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=5,
        help="alternated rounds of the I/O floor and the full and 50 %% nodata scenes (ratios "
        "between them are medians of the rounds' ratios)",
    )
    parser.add_argument("--no-jp2", action="store_true", help="skip the JPEG 2000 product figure")
    parser.add_argument("--jp2-only", action="store_true", help="only the JPEG 2000 product figure")
    parser.add_argument("--no-store", action="store_true", help="skip the batch figure from S3")
    parser.add_argument("--store-only", action="store_true", help="only the batch figure from S3")
    parser.add_argument("--store-scenes", type=_positive, default=8, help="scenes in the S3 one")
    parser.add_argument(
        "--no-record", action="store_true", help="do not write the run's tables to build/bench/"
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: the GPU figures (issue 7 §3) and the CPU map they must reproduce",
    )
    args = parser.parse_args()
    if args.jp2_only:
        report(run_jp2(args.repeats) or NO_JP2, args.no_record)
        return
    if args.store_only:
        report(run_store(args.store_scenes, args.repeats), args.no_record)
        return

    print(f"scene {args.size}² × {args.bands} uint16 (generated once into bench/cache)")
    scene = scene_path(args.size, args.bands, nodata_fraction=0.05)
    model = model_path(args.size, args.bands)
    if args.device == "cuda":
        with tempfile.TemporaryDirectory(dir=scene.parent) as tmp:
            figures, checks = run_cuda(scene, model, Path(tmp), args.repeats)
        report(format_table(figures, cuda_ratios(figures, checks)), args.no_record)
        return
    half = scene_path(args.size, args.bands, nodata_fraction=0.5)
    with tempfile.TemporaryDirectory(dir=scene.parent) as tmp:
        out = Path(tmp)
        bf16 = cpu_runs_bf16()
        if not bf16:
            print(f"  {NO_BF16}")
        figures = [
            run_figure("peak", scene, model, out / "peak", "fp32"),
            run_figure("model", scene, model, out / "model", "fp32"),
        ]
        if bf16:
            figures += [
                run_figure("peak", scene, model, out / "peak", "bf16"),
                run_figure("model", scene, model, out / "model", "bf16"),
                run_figure("e2e", scene, model, out / "bf16.tif", "bf16"),
            ]
        plan = {
            "io": ("io", scene, out / "io.tif"),
            "e2e fp32": ("e2e", scene, out / f"{scene.stem}.tif"),
            "e2e fp32, 50 % nodata": ("e2e", half, out / f"{half.stem}.tif"),
        }
        figures += run_alternating(plan, model, args.repeats).values()
        if not args.no_large:
            large = mosaic_path(scene, 2)
            label = "e2e fp32, 4× scene"
            figures.append(run_figure("e2e", large, model, out / "large.tif", "fp32", label))
        fp32 = out / f"{scene.stem}.tif"
        checks = {"valid_px": float(label_counts(fp32)[0])}
        if bf16:
            checks["bf16_same_label"] = agreement(fp32, out / "bf16.tif")
        if not args.no_baseline:
            figures.append(run_figure("baseline", scene, model, out / "rioxarray.tif", "fp32"))
            checks["baseline_same_label"] = agreement(fp32, out / "rioxarray.tif")
    table = format_table(figures, ratios(figures, checks))
    if not bf16:
        table += f"\n\n{NO_BF16}"
    if not args.no_jp2:
        table += f"\n\n{run_jp2(args.repeats) or NO_JP2}"
    if not args.no_store:
        table += f"\n\n{run_store(args.store_scenes, args.repeats)}"
    report(table, args.no_record)


def run_jp2(repeats: int) -> str | None:
    """The JPEG 2000 table: the product's JP2 bands and their GeoTIFF twins, end to end and
    decoded alone, alternated for `repeats` rounds; None where no product is found."""
    bands = jp2.jp2_bands()
    if bands is None:
        return None
    print(f"JP2 product: {len(bands)} bands of {bands[0].parent} (GeoTIFF twins in bench/cache)")
    copies, model = jp2.folders(bands), jp2.model(bands)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        plan = {
            label: (name, copies[copy], Path(tmp) / f"{copy}.tif")
            for label, (name, copy) in jp2.LABELS.items()
        }
        figures = run_alternating(plan, model, repeats)
    return format_table(list(figures.values()), jp2.jp2_ratios(figures))


def report(table: str, no_record: bool) -> None:
    """Print the run's tables and, unless told not to, write them to build/bench/."""
    print(table)
    if not no_record:
        command = " ".join(["python -m bench", *sys.argv[1:]])
        path = record("engine", datetime.now(), command, table)
        print(f"recorded in {path}")


if __name__ == "__main__":
    main()
