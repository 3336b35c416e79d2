"""`bandfusion predict` on rasters with corrupt metadata: the map is written, with no
traceback (regressions found by fuzzing; tests/cli/test_predict_fuzz.py is the fuzzer)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from bandfusion.errors import BandfusionWarning
from bandfusion.io.scene import open_scene

from tests.fuzzing import model_dir_for, run_cli
from tests.strategies import BASES, write_base


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
