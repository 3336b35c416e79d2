"""The batch job on real dask.distributed clusters over loopback: worker processes, a killed
worker, an external scheduler, a killed and resumed command. Every map must be byte-identical
to the one `bandfusion predict` writes for the same scene."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.atomic import temporary_path
from bandfusion.batch import tasks
from bandfusion.batch.manifest import SceneSpec, file_sha256
from bandfusion.batch.run import run_batch
from bandfusion.cli import main
from bandfusion.progress import Step
from distributed import Client

from tests.helpers import (
    BANDFUSION,
    chip_bands,
    kill_busy_worker,
    manifest_scenes,
    no_cluster,
    predict_sha256,
    save_chip_model,
    stack_chip,
    wait_for,
)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the two chips as 4-band rasters."""
    folder = tmp_path_factory.mktemp("stacks")
    for chip in ("adwp", "akny"):
        stack_chip(chip, folder / f"{chip}.tif")
    return folder


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> dict[str, str]:
    """sha256 of `predict`'s map for each chip (band files and stacks give the same map)."""
    folder = tmp_path_factory.mktemp("predict")
    return {
        chip: predict_sha256(chip_bands(chip), model_dir, folder / f"{chip}.tif")
        for chip in ("adwp", "akny")
    }


def copies(folder: Path, stacks: Path, count: int) -> Path:
    """`count` scenes in `folder`: copies of the stacked chips, alternating adwp and akny."""
    folder.mkdir()
    for i in range(count):
        chip = ("adwp", "akny")[i % 2]
        shutil.copy(stacks / f"{chip}.tif", folder / f"{chip}-{i:02d}.tif")
    return folder


def chip_of(output: str) -> str:
    return "adwp" if "adwp" in output else "akny"


def assert_all_match_predict(out: Path, expected: dict[str, str], count: int) -> None:
    """Every scene done, its map byte-identical to predict's, and nothing else left in `out`."""
    manifest = json.loads((out / "manifest.json").read_text())
    scenes = manifest["scenes"]
    assert len(scenes) == count
    for scene in scenes:
        assert scene["status"] in ("done", "skipped"), scene
        assert scene["sha256"] == file_sha256(out / scene["output"])
        assert scene["sha256"] == expected[chip_of(scene["output"])], scene["output"]
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_globs_and_band_file_lists_give_predicts_maps_and_a_full_manifest(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path, expected: dict[str, str]
):
    scenes = tmp_path / "scenes.csv"
    scenes.write_text(
        "inputs,output\n"
        + "".join(f"{';'.join(map(str, chip_bands(c)))},bands/{c}.tif\n" for c in ("adwp", "akny"))
    )
    result = run_batch([str(stacks / "*.tif"), scenes], model_dir, tmp_path / "out", client)
    outputs = ["adwp.tif", "akny.tif", "bands/adwp.tif", "bands/akny.tif"]
    assert [r.output for r in result.records] == outputs
    assert_all_match_predict(tmp_path / "out", expected, 4)
    record = json.loads((tmp_path / "out" / "manifest.json").read_text())["scenes"][2]
    assert [Path(i["path"]) for i in record["inputs"]] == chip_bands("adwp")
    assert [i["size"] for i in record["inputs"]] == [p.stat().st_size for p in chip_bands("adwp")]
    with rasterio.open(tmp_path / "out" / "bands" / "adwp.tif") as written:
        values, counts = np.unique(written.read(1), return_counts=True)
    names = ["nodata" if v == 255 else str(v) for v in values.tolist()]
    assert record["pixels"] == dict(zip(names, counts.tolist(), strict=True))
    assert len(record["pixels"]) > 2
    assert record["worker"] in client.nthreads()
    assert record["duration_s"] > 0 and record["parts"] == 1 and record["error"] is None


def test_a_failing_scene_is_recorded_and_the_others_complete(
    tmp_path: Path,
    client: Client,
    model_dir: Path,
    stacks: Path,
    expected: dict[str, str],
    capsys: pytest.CaptureFixture[str],
):
    folder = copies(tmp_path / "in", stacks, 2)
    (folder / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 100)
    with pytest.raises(SystemExit) as info:
        main(["batch", str(folder), "-m", str(model_dir), "--out-dir", str(tmp_path / "out"),
              "--scheduler", client.scheduler.address])  # fmt: skip
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "\nscenes: 3/3 scene\npixels: 524,288 px\n" in err  # stderr is no terminal: no bars
    assert err.strip().splitlines()[-1] == (
        f"bandfusion: error: 1 of 3 scenes failed; reasons in {tmp_path / 'out' / 'manifest.json'}"
    )
    assert "failed: corrupt.tif: " in err
    rows = {line.split()[1]: line.split()[0] for line in out.splitlines()[1:-1]}
    assert rows == {"adwp-00.tif": "done", "akny-01.tif": "done", "corrupt.tif": "failed"}
    scenes = json.loads((tmp_path / "out" / "manifest.json").read_text())["scenes"]
    bad = scenes[-1]
    assert bad["status"] == "failed" and bad["sha256"] is None
    assert bad["error"].startswith(f"{folder / 'corrupt.tif'}: not a raster GDAL can read")
    assert "\n" not in bad["error"]
    assert not (tmp_path / "out" / "corrupt.tif").exists()
    for scene in scenes[:2]:
        assert scene["sha256"] == expected[chip_of(scene["output"])]


def test_a_mismatched_scene_fails_with_the_band_error(
    tmp_path: Path, client: Client, model_dir: Path, data_dir: Path
):
    # Not the Spain chip: its B2, B3, B4, B8 are the model's B02, B03, B04, B08 (io/bands.py).
    rgb = data_dir / "landsat7_rgb" / "RGB.byte.tif"
    result = run_batch(
        [SceneSpec.of(rgb), SceneSpec.of(chip_bands("akny"))], model_dir, tmp_path, client
    )
    assert [r.status for r in result.records] == ["failed", "done"]
    assert "do not match the model's ['B02', 'B03', 'B04', 'B08']" in str(result.failed[0].error)


def test_rerun_skips_complete_outputs_and_redoes_the_rest(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path, expected: dict[str, str]
):
    folder = copies(tmp_path / "in", stacks, 5)
    out = tmp_path / "out"
    first = run_batch(folder, model_dir, out, client)
    assert first.count("done") == 5
    (out / "adwp-00.tif").unlink()
    (out / "akny-01.tif").write_bytes((out / "akny-01.tif").read_bytes()[:1000])
    os.utime(folder / "adwp-02.tif", ns=(0, 0))
    temporary_path(out / "akny-03.tif").write_bytes(b"left by a killed writer")
    second = run_batch(folder, model_dir, out, client)
    statuses = {r.output: r.status for r in second.records}
    assert statuses == {"adwp-00.tif": "done", "adwp-02.tif": "done", "adwp-04.tif": "skipped",
                        "akny-01.tif": "done", "akny-03.tif": "skipped"}  # fmt: skip
    assert second.records[4] == replace(first.records[4], status="skipped")
    assert_all_match_predict(out, expected, 5)
    forced = run_batch(folder, model_dir, out, client, force=True)
    assert [r.status for r in forced.records] == ["done"] * 5


def test_everything_current_needs_no_cluster(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path
):
    run_batch(stacks, model_dir, tmp_path, client)
    again = run_batch(stacks, model_dir, tmp_path, start_client=no_cluster)
    assert [r.status for r in again.records] == ["skipped", "skipped"]


def test_a_changed_model_redoes_everything(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path
):
    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    first = run_batch(stacks, model, tmp_path / "out", client)
    save_chip_model(model, seed=1)
    second = run_batch(stacks, model, tmp_path / "out", client)
    assert [r.status for r in second.records] == ["done", "done"]
    assert [r.sha256 for r in second.records] != [r.sha256 for r in first.records]


def test_model_is_loaded_once_per_worker(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path
):
    model = save_chip_model(tmp_path / "model", seed=7)  # weights no earlier test has loaded

    def loads() -> int:
        return tasks.loads

    before = client.run(loads)
    result = run_batch(copies(tmp_path / "in", stacks, 6), model, tmp_path / "out", client)
    workers = {r.worker for r in result.records}
    assert len(workers) == 2
    after = client.run(loads)
    assert {w: after[w] - before[w] for w in workers} == dict.fromkeys(workers, 1)


def test_a_big_scene_is_split_across_workers_bit_identically(
    tmp_path: Path, client: Client, model_dir: Path
):
    big = stack_chip("adwp", tmp_path / "big.tif", tiles=(3, 2))  # 1536 x 1024: 2 row chunks
    expected = predict_sha256([big], model_dir, tmp_path / "predict.tif")
    steps: list[Step] = []
    result = run_batch(big, model_dir, tmp_path / "out", client, progress=steps.append)
    [record] = result.records
    assert record.status == "done", record.error
    assert record.parts == 2
    assert record.sha256 == expected == file_sha256(tmp_path / "out" / "big.tif")
    assert sum(record.pixels.values()) == 1536 * 1024  # type: ignore[union-attr]
    assert sum(s.done for s in steps if s.stage == "pixels") == 1536 * 1024  # as written


def test_progress_counts_scenes_and_pixels_and_notes_the_cluster(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path
):
    steps: list[Step] = []
    result = run_batch(copies(tmp_path / "in", stacks, 4), model_dir, tmp_path / "out", client,
                       progress=steps.append)  # fmt: skip
    scenes = [s for s in steps if s.stage == "scenes"]
    assert [s.done for s in scenes if s.done] == [1] * 4 and {s.total for s in scenes} == {4}
    [note] = [s.note for s in scenes if s.note]
    assert note.startswith("cluster: 2 workers, 2 threads")
    pixels = sum(s.done for s in steps if s.stage == "pixels")
    assert pixels == sum(sum(r.pixels.values()) for r in result.records)  # type: ignore[union-attr]


class _KillWorker:
    """A progress callback that kills a worker process running a scene (SIGKILL) when the
    first scene is done."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.killed: str | None = None

    def __call__(self, step: Step) -> None:
        if step.stage == "scenes" and step.done and not self.killed:
            self.killed = kill_busy_worker(self.client)


@pytest.mark.slow
def test_a_killed_worker_still_ends_with_every_map_correct(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path, expected: dict[str, str]
):
    killer = _KillWorker(client)
    result = run_batch(copies(tmp_path / "in", stacks, 12), model_dir, tmp_path / "out", client,
                       progress=killer)  # fmt: skip
    assert killer.killed is not None
    assert [r.status for r in result.records] == ["done"] * 12
    assert_all_match_predict(tmp_path / "out", expected, 12)
    client.wait_for_workers(2, timeout=60)
    assert killer.killed not in client.nthreads()


@pytest.fixture
def external_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and two worker processes started as separate commands; yields the address."""
    scheduler_file = tmp_path / "scheduler.json"
    where = ["--scheduler-file", str(scheduler_file), "--host", "127.0.0.1", "--no-dashboard"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(_start("distributed.cli.dask_scheduler", "--port", "0", *where))
        processes.append(_start("distributed.cli.dask_worker", "--nworkers", "2",
                                "--nthreads", "1", "--death-timeout", "60", *where))  # fmt: skip
        wait_for(scheduler_file.exists, "scheduler file")
        with Client(scheduler_file=str(scheduler_file), set_as_default=False) as probe:
            probe.wait_for_workers(2, timeout=60)
            yield str(probe.scheduler.address)
    finally:
        for process in reversed(processes):
            _stop(process)


def _start(module: str, *args: str) -> subprocess.Popen[bytes]:
    """`python -m module args` in its own process group, so that it can be stopped whole."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_external_scheduler_address_is_used(
    tmp_path: Path,
    external_cluster: str,
    model_dir: Path,
    stacks: Path,
    expected: dict[str, str],
    capsys: pytest.CaptureFixture[str],
):
    folder = copies(tmp_path / "in", stacks, 4)
    main(["batch", str(folder / "*.tif"), "-m", str(model_dir), "--out-dir",
          str(tmp_path / "out"), "--scheduler", external_cluster, "-q"])  # fmt: skip
    assert "cluster: 2 workers, 2 threads" in capsys.readouterr().err
    assert_all_match_predict(tmp_path / "out", expected, 4)
    with Client(external_cluster, set_as_default=False) as probe:
        workers = set(probe.nthreads())
    scenes = json.loads((tmp_path / "out" / "manifest.json").read_text())["scenes"]
    assert {scene["worker"] for scene in scenes} <= workers


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_command_resumes_to_the_same_maps_as_a_clean_run(
    tmp_path: Path, client: Client, model_dir: Path, stacks: Path
):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(8):
        stack_chip(("adwp", "akny")[i % 2], folder / f"s{i}.tif", tiles=(2, 2))
    clean = run_batch(folder, model_dir, tmp_path / "clean", client)
    out = tmp_path / "out"
    args = ["batch", str(folder), "-m", str(model_dir), "--out-dir", str(out),
            "--scheduler", client.scheduler.address, "-q"]  # fmt: skip
    process = subprocess.Popen([str(BANDFUSION), *args], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: _statuses(out).count("done") >= 1, "finished scene", timeout=120)
    finally:
        process.kill()
        process.wait(timeout=30)
    interrupted = _statuses(out)
    assert interrupted.count("pending") >= 1, interrupted
    main(args)
    assert _statuses(out).count("skipped") == interrupted.count("done")
    scenes = json.loads((out / "manifest.json").read_text())["scenes"]
    assert {s["output"]: s["sha256"] for s in scenes} == {r.output: r.sha256 for r in clean.records}
    assert all(file_sha256(out / s["output"]) == s["sha256"] for s in scenes)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def _statuses(out: Path) -> list[str]:
    return [scene["status"] for scene in manifest_scenes(out)]
