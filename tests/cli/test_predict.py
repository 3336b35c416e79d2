"""`bandfusion predict` in-process: rasters with corrupt metadata still give a map with no
traceback (regressions found by fuzzing; tests/cli/test_predict_fuzz.py is the fuzzer), and
the `--precision` choices and refusals."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import rasterio
from bandfusion.cli import main
from bandfusion.errors import BandfusionWarning
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.fuzzing import model_dir_for, run_cli
from tests.helpers import random_model
from tests.strategies import BASES, write_base

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


@pytest.mark.parametrize("corrupt", [b">\x80B2<", b">\x01B2<"], ids=["not-utf8", "control"])
def test_corrupt_band_descriptions_name_bands_by_number(
    tmp_path: Path, scratch: Path, corrupt: bytes
):
    """rasterio raised UnicodeDecodeError for the first; GDAL drops the control character of
    the second from the map's tags, which the writer took for a failure (exit 1)."""
    path = write_base(tmp_path / "base.tif", BASES["described-scaled-int16"])
    path.write_bytes(path.read_bytes().replace(b">B02<", corrupt))
    with pytest.warns(BandfusionWarning, match="band descriptions are corrupt"):
        scene = open_scene(path)
    assert list(scene["band"].values) == ["b1", "b2", "b3"]
    model = model_dir_for(["b1", "b2", "b3"], scratch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, err = run_cli(["predict", str(path), "-m", str(model), "-o", str(tmp_path / "m.tif")])
    assert code == 0, err


def test_a_gdal_message_that_is_not_utf8_prints_no_traceback(tmp_path: Path, scratch: Path):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    path.write_bytes(path.read_bytes().replace(b"<GDALMetadata>", b"<GDAL \x82Metadata>"))
    model = model_dir_for(["b1"], scratch)
    command = [sys.executable, "-m", "bandfusion.cli", "predict", str(path), "-m", str(model),
               "-o", str(tmp_path / "map.tif"), "-q"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


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
    assert (
        stderr
        == "bandfusion: error: --precision fp16: needs a CUDA device; on a CPU use bf16 or fp32"
    )


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
    assert "\n" not in stderr and stderr.startswith("bandfusion: error: --precision bf16: this CPU")
    assert "no native bfloat16" in stderr
    assert not out.exists()
