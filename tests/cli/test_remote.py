"""Remote scenes on the command line: an https:// or s3:// scene gives the map its local copy
gives; a remote read that fails is one line naming the URL, exit 2, nothing written; outputs
named by URL are refused by `predict` (`batch` writes into object storage:
tests/batch/test_object_store.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3_BUCKET
from tests.fuzzing import run_cli
from tests.helpers import chip_bands, file_sha256, save_chip_model
from tests.servers import RangeServer


@pytest.fixture(scope="module")
def chip_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_chip_model(tmp_path_factory.mktemp("remote") / "model")


def test_predict_and_info_over_http_and_s3(
    tmp_path: Path, http_server: RangeServer, s3_env: Any, chip_model: Path
) -> None:
    bands = chip_bands("adwp")
    https = [http_server.publish(f"/cli/adwp/{p.name}", p) for p in bands]
    for path in bands:
        s3_env.upload_file(str(path), S3_BUCKET, f"cli/adwp/{path.name}")
    s3 = [f"s3://{S3_BUCKET}/cli/adwp/{p.name}" for p in bands]
    maps = {}
    for road, inputs in {"local": [str(p) for p in bands], "https": https, "s3": s3}.items():
        out = tmp_path / f"{road}.tif"
        code, err = run_cli(["predict", *inputs, "-m", str(chip_model), "-o", str(out), "-q"])
        assert code == 0, err
        maps[road] = file_sha256(out)
    assert maps["https"] == maps["local"] == maps["s3"]
    assert run_cli(["info", https[0]])[0] == 0


def test_a_failed_remote_read_is_one_line_and_writes_nothing(
    tmp_path: Path, http_server: RangeServer, chip_model: Path
) -> None:
    bands = chip_bands("akny")
    data = bands[1].read_bytes()
    cut = http_server.publish("/cli/akny/B03.tif", data[: len(data) // 3])
    out = tmp_path / "map.tif"
    inputs = [str(bands[0]), cut, *(str(p) for p in bands[2:])]
    code, err = run_cli(["predict", *inputs, "-m", str(chip_model), "-o", str(out), "-q"])
    assert code == 2
    assert err.count("\n") == 1 and cut in err, err
    assert list(tmp_path.iterdir()) == []


def test_outputs_named_by_url_are_refused(
    tmp_path: Path, chip_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scene = str(chip_bands("adwp")[0])
    target = ["-o", "s3://bucket/maps/map.tif"]
    code, err = run_cli(["predict", scene, "-m", str(chip_model), *target, "-q"])
    assert code == 2
    assert err.count("\n") == 1 and "s3://bucket/maps" in err and "local" in err, err
    assert list(tmp_path.iterdir()) == []
