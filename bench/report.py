"""Ratios between the benchmark's figures, their targets (issue 7), and each run's raw record."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any

import rasterio
import torch

PRECISIONS = ("fp32", "bf16")
RUNS = Path(__file__).resolve().parent.parent / "build" / "bench"
"""Where every run's tables go, one file a run. bench/RESULTS.md, which git tracks, holds the
current figures and the decisions taken on them, updated by hand from these files."""


@dataclass
class Figure:
    """One measured figure: wall seconds of the work, the process's peak RSS, the load then."""

    name: str
    seconds: float
    rss_mb: float
    load: float
    measured: dict[str, Any]

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds (user + system, all threads) the work took."""
        return float(self.measured["cpu_seconds"])

    def describe(self) -> str:
        """One line: name, time, RSS, rate where there is one, load average."""
        rate = ""
        if "gflops" in self.measured:
            rate = f"{self.measured['gflops']:.0f} GFLOP/s"
        if "px_per_s" in self.measured:
            rate = f"{self.measured['px_per_s'] / 1e6:.2f} Mpx/s, {rate}"
        return (
            f"{self.name:<22} {self.seconds:8.2f} s  {self.cpu_seconds:8.2f} CPU s  "
            f"{self.rss_mb:7.0f} MB RSS  "
            f"{rate:<28} load {self.load:.2f}"
        )


@dataclass(frozen=True)
class Ratio:
    """A derived figure and the target it is held to (None: informative only)."""

    name: str
    value: float
    target: str | None
    met: bool | None


def ratios(figures: list[Figure], checks: dict[str, float]) -> list[Ratio]:
    """The issue's targets, computed from the figures of one run."""
    by = {f.name: f for f in figures}
    valid = checks["valid_px"]
    models = {p: by[f"model {p}"] for p in PRECISIONS if f"model {p}" in by}
    model_s = {p: valid / figure.measured["px_per_s"] for p, figure in models.items()}
    e2e = by["e2e fp32"]
    model_cpu = by["model fp32"].cpu_seconds * valid / by["model fp32"].measured["pixels"]
    cpu_floor = by["io"].cpu_seconds + model_cpu
    found = [
        Ratio("model floor fp32 for the scene (s)", model_s["fp32"], None, None),
        *paired(
            "e2e fp32 / (I/O floor + model floor)",
            e2e,
            by["io"],
            lambda full, io: full / (io + model_s["fp32"]),
            _at_most,
            1.1,
        ),
        Ratio(
            "e2e fp32 / (I/O + model floors) in CPU seconds",
            e2e.cpu_seconds / cpu_floor,
            None,
            None,
        ),
        _at_least(
            "model fp32 / sgemm peak fp32",
            by["model fp32"].measured["gflops"] / by["peak fp32"].measured["gflops"],
            0.5,
        ),
        Ratio(
            "e2e fp32 / I/O floor: the most any model speed-up can give",
            e2e.seconds / by["io"].seconds,
            None,
            None,
        ),
        _at_most("e2e fp32 peak RSS (MB)", e2e.rss_mb, 768),
        *paired(
            "50 % nodata speed-up",
            e2e,
            by["e2e fp32, 50 % nodata"],
            lambda full, part: full / part,
            _at_least,
            1.6,
        ),
    ]
    if "bf16" in model_s:
        found += [
            Ratio("model floor bf16 for the scene (s)", model_s["bf16"], None, None),
            _at_least("model bf16 / model fp32 (speed)", model_s["fp32"] / model_s["bf16"], 1.8),
            Ratio("e2e bf16 / e2e fp32 (speed)", e2e.seconds / by["e2e bf16"].seconds, None, None),
            _at_least("bf16 same label as fp32", checks["bf16_same_label"], 0.999),
        ]
    if "e2e fp32, 4× scene" in by:
        larger = by["e2e fp32, 4× scene"].rss_mb / e2e.rss_mb
        found.append(_at_most("peak RSS, 4× scene / scene", larger, 1.1))
    if "baseline" in by:
        base = by["baseline"]
        found += [
            _at_least("rioxarray / e2e fp32 (speed)", base.seconds / e2e.seconds, 2.2),
            _at_most("e2e fp32 RSS / rioxarray RSS", e2e.rss_mb / base.rss_mb, 0.25),
            _at_least("rioxarray same label as fp32", checks["baseline_same_label"], 0.9999),
        ]
        if "e2e bf16" in by:
            speed = base.seconds / by["e2e bf16"].seconds
            found.append(_at_least("rioxarray / e2e bf16 (speed)", speed, 3.5))
    return found


def cuda_ratios(figures: list[Figure], checks: dict[str, float]) -> list[Ratio]:
    """Issue 7's GPU targets: the engine at the I/O floor, the kernel's rate, the CPU's map."""
    by = {f.name: f for f in figures}
    e2e = by["e2e fp32 cuda"]
    found = [
        *paired(
            "e2e fp32 cuda / I/O floor",
            e2e,
            by["io"],
            lambda gpu, io: gpu / io,
            _at_most,
            1.1,
        ),
        *(
            _at_least(
                f"model {p} cuda (Gpx/s)", by[f"model {p} cuda"].measured["px_per_s"] / 1e9, 5
            )
            for p in ("fp32", "bf16", "fp16")
        ),
        _at_most(
            "cuda fp32 map: pixels differing from the CPU fp32 map",
            checks["cuda_fp32_differing_px"],
            0,
        ),
        _at_least("bf16 cuda same label as CPU fp32", checks["bf16_same_label"], 0.999),
        _at_least("fp16 cuda same label as CPU fp32", checks["fp16_same_label"], 0.999),
        Ratio(
            "e2e fp32 CPU / e2e fp32 cuda (speed)", by["e2e fp32"].seconds / e2e.seconds, None, None
        ),
        Ratio("valid pixels in the map", checks["valid_px"], None, None),
    ]
    return found


def paired(
    name: str,
    first: Figure,
    second: Figure,
    ratio: Callable[[float, float], float],
    held_to: Callable[[str, float, float], Ratio],
    limit: float,
) -> list[Ratio]:
    """`ratio` of two alternated figures' times: the median of its value in each round.

    Each round ran the two back to back, under the machine's state of the moment; pairing them
    cancels the drift between rounds that a ratio of the two medians would keep. The lowest
    and highest round show the spread.
    """
    pairs = list(
        zip(first.measured.get("runs_s", []), second.measured.get("runs_s", []), strict=True)
    )
    if len(pairs) < 2:
        return [held_to(name, ratio(first.seconds, second.seconds), limit)]
    values = sorted(ratio(a, b) for a, b in pairs)
    return [
        held_to(f"{name} (median of {len(pairs)} paired rounds)", median(values), limit),
        Ratio(f"{name}, lowest round", values[0], None, None),
        Ratio(f"{name}, highest round", values[-1], None, None),
    ]


def _at_most(name: str, value: float, limit: float) -> Ratio:
    return Ratio(name, value, f"≤ {limit:g}", value <= limit)


def _at_least(name: str, value: float, limit: float) -> Ratio:
    return Ratio(name, value, f"≥ {limit:g}", value >= limit)


def format_table(figures: list[Figure], derived: list[Ratio]) -> str:
    """Markdown tables of the figures and of the ratios with their targets."""
    lines = [
        "| figure | seconds | CPU seconds | peak RSS (MB) | rate | load (1 min) |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for f in figures:
        rate = ""
        if "px_per_s" in f.measured:
            rate = f"{f.measured['px_per_s'] / 1e6:.2f} Mpx/s, "
        if "gflops" in f.measured:
            rate += f"{f.measured['gflops']:.0f} GFLOP/s"
        lines.append(
            f"| {f.name} | {f.seconds:.2f} | {f.cpu_seconds:.2f} | {f.rss_mb:.0f} | {rate} "
            f"| {f.load:.2f} |"
        )
    lines += ["", "| ratio | value | target | met |", "| --- | ---: | --- | --- |"]
    for r in derived:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.name} | {r.value:.4g} | {r.target or ''} | {met} |")
    return "\n".join(lines)


def record(name: str, when: datetime, command: str, text: str) -> Path:
    """Write one run's tables, headed by its time, command and machine, to build/bench/.

    The file is NAME-YYYYMMDD-HHMMSS.md, so runs never overwrite each other; returns its path.
    """
    RUNS.mkdir(parents=True, exist_ok=True)
    path = RUNS / f"{name}-{when:%Y%m%d-%H%M%S}.md"
    heading = f"# {when:%Y-%m-%d %H:%M} · `{command}` · {machine()}"
    path.write_text(f"{heading}\n\n{text}\n")
    return path


def machine() -> str:
    """CPU model, cores, memory, and the torch and GDAL versions the figures were taken with."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
    cpu = names[0].split(":", 1)[1].strip() if names else platform.machine()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{cpu} ({torch.backends.cpu.get_cpu_capability()}), {os.cpu_count()} cores, "
        f"{memory:.0f} GiB{gpu}, torch {torch.__version__}, "
        f"GDAL {rasterio.__gdal_version__}"
    )
