"""Fixtures of the batch tests: a small saved model over the On Cloud N chips' bands, and a
finished scene record whose files exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from bandfusion.batch.manifest import InputStamp, SceneRecord, file_sha256

from tests.helpers import save_chip_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chip model, saved once per module (test_faults.py trains its own)."""
    return save_chip_model(tmp_path_factory.mktemp("model") / "chip-model")


@pytest.fixture
def done(tmp_path: Path) -> SceneRecord:
    """A finished record whose output and input exist in tmp_path."""
    (tmp_path / "in.tif").write_bytes(b"input")
    (tmp_path / "out.tif").write_bytes(b"map")
    return SceneRecord(
        output="out.tif",
        inputs=(InputStamp.of(tmp_path / "in.tif"),),
        model_sha256="m1",
        status="done",
        sha256=file_sha256(tmp_path / "out.tif"),
        pixels={"1": 3, "nodata": 1},
        duration_s=0.5,
        worker="tcp://127.0.0.1:1",
        parts=1,
    )
