"""Faults in a batch of many small scenes, through the real `bandfusion batch` command.

Corrupt scenes sit among 120 good ones; one worker process is SIGKILLed mid-run, then the
command itself, and the same command is run again. The end state must be the one a clean run of
the good scenes leaves: every good map done once and byte-identical, no scene finished before
the crash computed again, every bad scene failed with its reason, nothing temporary left.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from bandfusion.atomic import temporary_path
from bandfusion.batch.manifest import file_sha256
from bandfusion.batch.run import run_batch
from bandfusion.io.pam import aux_path
from bandfusion.models.checkpoint import save_model
from distributed import Client

from tests.helpers import (
    BANDFUSION,
    kill_busy_worker,
    manifest_scenes,
    no_cluster,
    random_model,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

GOOD = 120
SIZE = 32
BANDS = ("B02", "B03", "B04", "B08")
BAD = {
    "s017-cut-in-header.tif": "not a raster GDAL can read",
    "s039-cut-in-pixels.tif": "cannot read its pixels; the file is truncated or corrupt",
    "s061-text.tif": "not a raster GDAL can read",
    "s083-empty.tif": "not a raster GDAL can read",
    "s105-three-bands.tif": "bands ['B02', 'B03', 'B04'] do not match the model's",
}
"""The corrupt scenes, named to sort among the good ones, and what each one's reason says."""


def good_name(index: int) -> str:
    return f"s{index:03d}.tif"


def write_scene(path: Path, seed: int, bands: tuple[str, ...] = BANDS) -> Path:
    """A 32 x 32 px reflectance-like scene whose per-band levels and noise vary with `seed`."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(300, 3000, size=(len(bands), 1, 1))
    data = rng.normal(levels, 400, size=(len(bands), SIZE, SIZE)).clip(1, 10000)
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": len(bands),
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, 500_000 + 320 * seed, 0, -10, 4_000_000),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype("uint16"))
        for index, band in enumerate(bands, start=1):
            dst.set_band_description(index, band)
    return path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of GOOD valid scenes and the BAD ones, each bad one made broken its own way."""
    folder = tmp_path_factory.mktemp("scenes")
    for index in range(GOOD):
        write_scene(folder / good_name(index), seed=index)
    spare = tmp_path_factory.mktemp("spare")
    header_last = write_scene(spare / "header-last.tif", seed=GOOD).read_bytes()
    header_first = spare / "header-first.tif"  # a copy: GDAL puts the header before the pixels
    rasterio.shutil.copy(spare / "header-last.tif", header_first, driver="GTiff")
    cut_header, cut_pixels, text, empty, three_bands = BAD
    (folder / cut_header).write_bytes(header_last[: len(header_last) * 2 // 3])
    (folder / cut_pixels).write_bytes(header_first.read_bytes()[: header_first.stat().st_size // 2])
    (folder / text).write_text("band,value\nB02,1200\n")
    (folder / empty).write_bytes(b"")
    write_scene(folder / three_bands, seed=GOOD + 1, bands=BANDS[:3])
    return folder


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, scenes: Path) -> Path:
    """A tiny random-weight model standardised on all the good scenes together."""
    stacked = np.concatenate([read(scenes / good_name(i)) for i in range(GOOD)], axis=1)
    scene = xr.DataArray(stacked, dims=("band", "y", "x"), coords={"band": list(BANDS)})
    model = random_model(scene, [1, 2, 3], hidden=(8,))
    return save_model(model, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def clean_out(
    tmp_path_factory: pytest.TempPathFactory, client: Client, scenes: Path, model_dir: Path
) -> Path:
    """The output dir of a clean, uninterrupted run of the good scenes only."""
    out = tmp_path_factory.mktemp("clean")
    result = run_batch(good_scenes(scenes), model_dir, out, client)
    assert [r.status for r in result.records] == ["done"] * GOOD
    return out


@pytest.fixture(scope="module")
def clean(clean_out: Path) -> dict[str, str]:
    """sha256 of each good scene's map in the clean run."""
    return {scene["output"]: scene["sha256"] for scene in manifest_scenes(clean_out)}


def good_scenes(scenes: Path) -> list[Path]:
    return [scenes / good_name(i) for i in range(GOOD)]


@dataclass(frozen=True)
class FaultyRun:
    """What the faulty run left: the manifest and maps when the command was killed, and after
    the rerun; the killed worker; the rerun's exit code and output; seconds to each event."""

    out: Path
    killed_worker: str
    at_kill: dict[str, dict[str, Any]]
    files_at_kill: dict[str, tuple[int, int]]
    final: list[dict[str, Any]]
    rerun: subprocess.CompletedProcess[str]
    seconds: dict[str, float]

    def done_at_kill(self) -> set[str]:
        return {name for name, scene in self.at_kill.items() if scene["status"] == "done"}


def finished(out: Path) -> int:
    return sum(scene["status"] != "pending" for scene in manifest_scenes(out))


def file_ids(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of each map in `out`: a map written again is a new inode (a rename)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.tif")}


@pytest.fixture(scope="module")
def faulty(
    tmp_path_factory: pytest.TempPathFactory, client: Client, scenes: Path, model_dir: Path
) -> FaultyRun:
    """Run the command on `client`'s cluster; SIGKILL a busy worker after 10 scenes and the
    command itself after 40 more; then run the same command again to its end."""
    out = tmp_path_factory.mktemp("faulty")
    command = [str(BANDFUSION), "batch", str(scenes), "-m", str(model_dir), "--out-dir",
               str(out), "--scheduler", client.scheduler.address, "-q"]  # fmt: skip
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: finished(out) >= 10, "10 finished scenes", timeout=120)
        seconds["worker killed"] = time.perf_counter() - start
        killed_worker = kill_busy_worker(client)
        wait_for(lambda: finished(out) >= 50, "50 finished scenes", timeout=120)
        seconds["command killed"] = time.perf_counter() - start
    finally:
        first.kill()
        first.wait(timeout=30)
    at_kill = {scene["output"]: scene for scene in manifest_scenes(out)}
    files_at_kill = file_ids(out)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=180)
    seconds["rerun done"] = time.perf_counter() - start
    client.wait_for_workers(2, timeout=60)
    final = manifest_scenes(out)
    return FaultyRun(out, killed_worker, at_kill, files_at_kill, final, rerun, seconds)


def test_both_kills_hit_mid_run(faulty: FaultyRun, client: Client):
    statuses = [scene["status"] for scene in faulty.at_kill.values()]
    assert len(statuses) == GOOD + len(BAD)
    assert statuses.count("done") >= 40 and statuses.count("pending") >= 1, faulty.seconds
    assert faulty.killed_worker not in client.nthreads()


def test_every_good_scene_is_done_once_with_the_clean_runs_map(
    faulty: FaultyRun, clean: dict[str, str]
):
    assert len(set(clean.values())) == GOOD  # every map differs, so none can stand in for another
    outputs = [scene["output"] for scene in faulty.final]
    assert sorted(outputs) == sorted([*clean, *BAD])  # one record each
    good = {scene["output"]: scene for scene in faulty.final if scene["output"] in clean}
    done_in_rerun = {name for name, scene in good.items() if scene["status"] == "done"}
    assert done_in_rerun.isdisjoint(faulty.done_at_kill())
    assert done_in_rerun | faulty.done_at_kill() == set(clean)
    assert {name: scene["sha256"] for name, scene in good.items()} == clean
    assert {name: file_sha256(faulty.out / name) for name in clean} == clean


def test_no_scene_done_before_the_crash_is_computed_again(faulty: FaultyRun):
    skipped = {scene["output"]: scene for scene in faulty.final if scene["status"] == "skipped"}
    assert set(skipped) == faulty.done_at_kill()
    now = file_ids(faulty.out)
    for name in skipped:  # the same record (worker, duration, digest) and the same file
        assert {**skipped[name], "status": "done"} == faulty.at_kill[name]
        assert now[name] == faulty.files_at_kill[name], name


def test_every_bad_scene_is_failed_with_its_reason(faulty: FaultyRun, scenes: Path):
    bad = {scene["output"]: scene for scene in faulty.final if scene["output"] in BAD}
    for name, reason in BAD.items():
        error = bad[name]["error"]
        assert bad[name]["status"] == "failed" and bad[name]["sha256"] is None
        assert error.startswith(f"{scenes / name}: ") and reason in error, error
        assert f"failed: {name}: {error}\n" in faulty.rerun.stderr
        assert not (faulty.out / name).exists()


def test_the_rerun_exits_2_and_leaves_only_maps_and_the_manifest(
    faulty: FaultyRun, clean: dict[str, str]
):
    """Only the maps (each with the `.aux.xml` that names its classes) and the manifest."""
    assert faulty.rerun.returncode == 2, faulty.rerun.stderr
    assert faulty.rerun.stderr.strip().splitlines()[-1] == (
        f"bandfusion: error: {len(BAD)} of {GOOD + len(BAD)} scenes failed; "
        f"reasons in {faulty.out / 'manifest.json'}"
    )
    maps = [*clean, *(f"{name}.aux.xml" for name in clean)]
    assert sorted(p.name for p in faulty.out.iterdir()) == sorted([*maps, "manifest.json"])


def test_a_rerun_with_nothing_to_redo_still_removes_what_a_crash_left(
    tmp_path: Path, clean_out: Path, scenes: Path, model_dir: Path
):
    """Regression: cleanup ran only when some scene needed work, so a worker's temporary map
    and a half-saved manifest left by a crash after the last scene stayed forever."""
    out = shutil.copytree(clean_out, tmp_path / "out")
    temporary_path(out / good_name(3)).write_bytes(b"II*\x00 cut")
    temporary_path(out / "manifest.json").write_text('{"version": 1, "sc')
    temporary_path(aux_path(out / good_name(4))).write_text("<PAMDataset><PAMRa")
    result = run_batch(good_scenes(scenes), model_dir, out, start_client=no_cluster)
    assert result.count("skipped") == GOOD
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean_out.iterdir())
