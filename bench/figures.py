"""One benchmark figure per process, so that each one's peak RSS is its own.

`python -m bench.figures NAME --scene S --model M --out O [--precision P]` runs figure NAME and
prints its measurements as one JSON line; `bench.__main__` runs them and reads the RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rasterio
import torch
import xarray as xr
from bandfusion.cli import main as bandfusion_main
from bandfusion.engine.cuda import UNSIGNED_CARRIERS, DeviceKernels, labels_on_device
from bandfusion.engine.predict import map_file_attrs
from bandfusion.io.gdal_settings import READ_THREADS
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.grid import Grid
from bandfusion.io.nodata import band_nodata, valid_mask
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import load_model
from bandfusion.models.inference import TorchKernel
from rasterio.windows import Window

Figure = Callable[[argparse.Namespace], dict[str, Any]]
MODEL_SAMPLE_EDGE = 2048
SGEMM_SIZE = 4096
CUDA_SGEMM_SIZE = 8192  # enough to fill a GPU
FLOOR_WINDOWS = 5
FLOOR_WINDOW_SECONDS = 1.0


def io_floor(args: argparse.Namespace) -> dict[str, Any]:
    """The engine's reads and map writes with no model: a band threshold stands in for it."""
    scene = open_scene(args.scene)
    model = load_model(args.model)
    stub = da.map_blocks(
        _threshold_map, scene.data, nodata=band_nodata(scene), drop_axis=0, dtype=np.uint8
    )
    classes = xr.DataArray(
        stub,
        dims=("y", "x"),
        coords={"y": scene["y"], "x": scene["x"]},
        attrs={**Grid.of(scene).to_attrs(), "nodata": 255, **map_file_attrs(model, class_map=True)},
    )
    return _timed(lambda: write_geotiff(classes, args.out))


def _threshold_map(block: np.ndarray, nodata: tuple[float | None, ...]) -> np.ndarray:
    """A uint8 map as patchy as a class map (bins of band 1), nodata where the engine has it."""
    out = np.minimum(block[0] // 400, 9).astype(np.uint8)
    out[~valid_mask(block, nodata)] = 255
    return out


def model_floor(args: argparse.Namespace) -> dict[str, Any]:
    """The model's kernel alone over in-memory pixels: the torch kernel, one worker thread per
    core (as dask runs), or on the GPU over pixels already in its memory, as the engine runs it."""
    model = load_model(args.model)
    kernel = TorchKernel.from_net(model.net, precision=args.precision, device=args.device)
    with rasterio.open(args.scene) as src:
        edge = min(MODEL_SAMPLE_EDGE, src.width, src.height)
        sample = src.read(window=Window(src.width - edge, 0, edge, edge))
    table = sample.reshape(sample.shape[0], -1)
    table = table[:, (table != 0).all(axis=0)]
    run = _cuda_runs(kernel, table) if kernel.device.type == "cuda" else _cpu_runs(kernel, table)
    run()  # warm-up: first calls pay for oneDNN's kernel selection or cuBLAS's handles
    result = _fastest_window(run)
    pixels = table.shape[1] * result["runs"]
    rate = pixels / result["seconds"]
    flops = rate * model.net.flops_per_pixel()
    return {**result, "pixels": pixels, "px_per_s": rate, "gflops": flops / 1e9}


def _cpu_runs(kernel: TorchKernel, table: np.ndarray) -> Callable[[], None]:
    """One run: the (bands, pixels) table's labels, split over one thread per core."""
    parts = np.array_split(np.arange(table.shape[1]), os.cpu_count() or 1)

    def work(part: np.ndarray) -> None:
        torch.set_num_threads(1)
        kernel.classify(torch.from_numpy(table[:, part[0] : part[-1] + 1]).T)

    def run() -> None:
        threads = [threading.Thread(target=work, args=(part,)) for part in parts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return run


def _cuda_runs(kernel: TorchKernel, table: np.ndarray) -> Callable[[], None]:
    """One run: the table's labels from GPU memory, synchronised, as the engine computes them
    there: uint16 as int16 bits, the fused kernel where Triton runs it, and in fp32 the
    certifying cascade (the fused kernel's bound, then the torch kernel's on the few in doubt).
    """
    kernels = DeviceKernels.of(kernel)
    pixels = torch.from_numpy(table.astype(np.uint16).view(np.int16)).to(kernel.device)
    carrier = UNSIGNED_CARRIERS[torch.uint16]

    def run() -> None:
        labels_on_device(kernels, pixels, carrier, torch.uint8, kernel.bound is not None)
        torch.cuda.synchronize()

    return run


def _fastest_window(work: Callable[[], object]) -> dict[str, Any]:
    """Seconds, CPU seconds and runs of `work` in the fastest of a few windows of repeated runs.

    A floor is the least the work can take: on a shared machine a window is only ever slowed,
    so the fastest is the truest (the model floor moved from 6.4 to 8.9 Mpx/s between single
    3-second windows here). The sgemm peak is taken the same way, so their ratio is fair.
    """
    windows = []
    for _ in range(FLOOR_WINDOWS):
        runs: list[int] = []
        window = _timed(lambda runs=runs: runs.append(_repeat_for(FLOOR_WINDOW_SECONDS, work)))
        windows.append({**window, "runs": runs[0]})
    return max(windows, key=lambda w: w["runs"] / w["seconds"])


def _repeat_for(seconds: float, work: Callable[[], object]) -> int:
    """Run `work` until `seconds` have passed (at least once); the number of runs.

    A sample the kernel finishes in a fraction of a second times scheduler noise, not the kernel.
    """
    start = time.perf_counter()
    runs = 0
    while runs == 0 or time.perf_counter() - start < seconds:
        work()
        runs += 1
    return runs


def sgemm_peak(args: argparse.Namespace) -> dict[str, Any]:
    """A large square matmul in torch on all cores, or on the GPU: its GEMM peak in `precision`."""
    torch.set_num_threads(os.cpu_count() or 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision, torch.float32)
    size = CUDA_SGEMM_SIZE if args.device.startswith("cuda") else SGEMM_SIZE
    a = torch.randn(size, size).to(args.device, dtype)
    b = torch.randn(size, size).to(args.device, dtype)

    def run() -> None:
        torch.mm(a, b)
        if a.is_cuda:
            torch.cuda.synchronize()

    run()
    result = _fastest_window(run)
    return {**result, "gflops": result["runs"] * 2 * size**3 / result["seconds"] / 1e9}


def scene_files(scene: Path) -> list[str]:
    """A scene's files: the file itself, or a folder's files in name order (one per band)."""
    return sorted(str(p) for p in scene.iterdir()) if scene.is_dir() else [str(scene)]


def decode_floor(
    args: argparse.Namespace, gdal_threads: int | str = READ_THREADS
) -> dict[str, Any]:
    """The engine's reader decoding every window of the scene, with no model and no writes:
    the floor of a format's end-to-end figure."""
    scene = open_scene(scene_files(args.scene), gdal_threads=gdal_threads)
    nothing = da.map_blocks(
        lambda block: np.zeros((1, 1, 1), np.uint8), scene.data, chunks=(1, 1, 1), dtype=np.uint8
    )
    return _timed(nothing.compute)


def end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    """`bandfusion predict` as a user runs it: scene → model → COG class map."""
    argv = [
        "predict",
        *scene_files(args.scene),
        "-m",
        str(args.model),
        "-o",
        str(args.out),
        "--precision",
        args.precision,
        "--device",
        args.device,
        "--quiet",
        "--overwrite",  # each round maps the scene onto the same file again
    ]
    return _timed(lambda: bandfusion_main(argv))


def rioxarray_baseline(args: argparse.Namespace) -> dict[str, Any]:
    """What a user would write: rioxarray chunks → map_blocks with the model → rio.to_raster."""
    import rioxarray

    model = load_model(args.model)
    net = model.net.eval()

    def classify(block: np.ndarray) -> np.ndarray:
        bands, height, width = block.shape
        pixels = torch.from_numpy(block.reshape(bands, -1).T.astype(np.float32))
        with torch.inference_mode():
            labels = net(pixels).argmax(dim=1).numpy().astype(np.uint8)
        labels[(block == 0).any(axis=0).ravel()] = 255
        return labels.reshape(height, width)

    def run() -> None:
        scene = rioxarray.open_rasterio(
            args.scene, chunks={"band": -1, "y": "auto", "x": "auto"}, lock=False
        )
        data = da.map_blocks(classify, scene.data, drop_axis=0, dtype=np.uint8)
        classes = xr.DataArray(data, dims=("y", "x"), coords={"y": scene.y, "x": scene.x})
        classes = classes.rio.write_crs(scene.rio.crs).rio.write_nodata(255)
        classes.rio.to_raster(
            args.out, tiled=True, compress="DEFLATE", lock=threading.Lock(), windowed=True
        )

    return _timed(run)


FIGURES: dict[str, Figure] = {
    "io": io_floor,
    "model": model_floor,
    "peak": sgemm_peak,
    "e2e": end_to_end,
    "baseline": rioxarray_baseline,
    "decode": decode_floor,
    "decode-all-cpus": lambda args: decode_floor(args, gdal_threads="ALL_CPUS"),
}


def _timed(work: Callable[[], object]) -> dict[str, Any]:
    """Wall seconds of `work`, and the CPU seconds (user + system, all threads) it took.

    CPU seconds move far less than wall time when other work shares the machine.
    """
    before = os.times()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    after = os.times()
    return {
        "seconds": seconds,
        "cpu_seconds": after.user + after.system - before.user - before.system,
    }


def main() -> None:
    """Run one figure and print its result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.figures")
    parser.add_argument("figure", choices=sorted(FIGURES))
    parser.add_argument("--scene", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    print(json.dumps({**FIGURES[args.figure](args), "rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB.

    Not ru_maxrss: Linux carries the parent's peak over into a child's across fork and exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main()
