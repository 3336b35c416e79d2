"""The engine around the kernel: nodata costs nothing, GDAL is bounded, precision on the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from bandfusion.cli import main
from bandfusion.engine.predict import PixelClassifier
from bandfusion.io.gdal_settings import GDAL_CACHE_MB, gdal_env
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.helpers import REPO, random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def scene(data_dir: Path):
    return open_scene(data_dir / S2)


@pytest.fixture(scope="module")
def classifier(scene) -> PixelClassifier:
    return PixelClassifier(random_model(scene, [0, 1]), torch.device("cpu"))


def test_only_valid_pixels_reach_the_kernel(scene, classifier, monkeypatch) -> None:
    block = scene.values.copy()
    block[:, :200] = 0  # nodata rows
    seen: list[int] = []
    classify = classifier.kernel.classify

    def spy(table: torch.Tensor) -> torch.Tensor:
        seen.append(len(table))
        return classify(table)

    monkeypatch.setattr(classifier.kernel, "classify", spy)
    nodata = (0.0,) * 13
    out = classifier.classify_block(block, nodata)
    valid = (block != 0).all(axis=0)
    assert seen == [int(valid.sum())]
    assert (out[~valid] == classifier.nodata).all()
    seen.clear()
    empty = classifier.classify_block(np.zeros_like(block), nodata)
    assert seen == [] and (empty == classifier.nodata).all()


def test_gdal_env_bounds_the_block_cache_in_bytes() -> None:
    with gdal_env(GDAL_NUM_THREADS=2):
        options = rasterio.env.getenv()
    assert options["GDAL_CACHEMAX"] == GDAL_CACHE_MB * 2**20  # rasterio passes an int as bytes
    assert options["GDAL_NUM_THREADS"] == 2


def test_reads_happen_inside_the_bounded_gdal_env(scene, monkeypatch) -> None:
    import bandfusion.io.scene as scene_module

    seen: list[dict[str, object]] = []
    original = scene_module.SceneReader._read_into

    def spy(self, out, source, window):
        seen.append(rasterio.env.getenv())
        original(self, out, source, window)

    monkeypatch.setattr(scene_module.SceneReader, "_read_into", spy)
    scene.isel(x=slice(0, 64), y=slice(0, 64)).compute(scheduler="threads")
    assert seen and all(env["GDAL_CACHEMAX"] == GDAL_CACHE_MB * 2**20 for env in seen)


def test_cli_precision(tmp_path: Path, data_dir: Path, scene, capsys, bf16_on_any_cpu) -> None:
    model = save_model(random_model(scene, [0, 1], hidden=(64, 64)), tmp_path / "model")
    maps = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.tif"
        main(["predict", str(data_dir / S2), "-m", str(model), "-o", str(out), "--quiet",
              "--precision", precision, "--no-cog"])  # fmt: skip
        with rasterio.open(out) as src:
            maps[precision] = src.read(1)
    assert (maps["fp32"] == maps["bf16"]).mean() >= 0.999
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(data_dir / S2), "-m", str(model), "-o", str(tmp_path / "x.tif"),
              "--precision", "fp16", "--device", "cpu"])  # fmt: skip
    assert refused.value.code == 2
    stderr = capsys.readouterr().err.strip()
    assert "\n" not in stderr and "fp16 needs a CUDA device" in stderr


def test_cli_refuses_bf16_on_a_cpu_that_only_emulates_it(
    tmp_path: Path, data_dir: Path, scene, capsys, monkeypatch
) -> None:
    import bandfusion.engine.predict as predict_module

    monkeypatch.setattr(predict_module, "cpu_runs_bf16", lambda: False)
    model = save_model(random_model(scene, [0, 1], hidden=(8,)), tmp_path / "model")
    out = tmp_path / "map.tif"
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(data_dir / S2), "-m", str(model), "-o", str(out),
              "--precision", "bf16", "--device", "cpu"])  # fmt: skip
    assert refused.value.code == 2
    stderr = capsys.readouterr().err.strip()
    assert "\n" not in stderr and "no native bfloat16" in stderr
    assert not out.exists()


@pytest.mark.slow
def test_bench_runs_end_to_end_on_a_small_scene() -> None:
    root = REPO
    command = [sys.executable, "-m", "bench", "--size", "512", "--no-record", "--no-baseline"]
    command += ["--repeats", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = ("| io |", "| e2e fp32 |", "| model fp32 |", "e2e fp32 / (I/O floor")
    lines += ("50 % nodata speed-up (median of 2 paired rounds)",)
    for line in lines:
        assert line in result.stdout
