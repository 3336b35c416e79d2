"""`bandfusion batch`'s own rules, checked before any work (tests/batch/ runs the job)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from bandfusion.cli import main

from tests.helpers import BANDFUSION, manifest_scenes, save_chip_model, stack_chip


def test_cli_refuses_workers_with_a_scheduler(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        main(
            ["batch", "x.tif", "-m", "m", "--out-dir", "o", "--scheduler", "h:1", "--workers", "2"]
        )
    assert info.value.code == 2
    assert "local cluster only" in capsys.readouterr().err


def test_a_fifo_in_the_input_folder_is_failed_and_the_run_ends(tmp_path: Path):
    """Issue 18: one FIFO named like a raster in the folder kept the whole batch from ending."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    stack_chip("adwp", folder / "adwp.tif")
    os.mkfifo(folder / "pipe.tif")
    model = save_chip_model(tmp_path / "model")
    out = tmp_path / "maps"
    run = subprocess.run(
        [str(BANDFUSION), "batch", str(folder), "-m", str(model), "--out-dir", str(out), "-q",
         "--workers", "1", "--threads-per-worker", "1"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if "pipe.tif" in line] == [
        f"failed: pipe.tif: {folder / 'pipe.tif'}: is a FIFO (named pipe), not a regular file; "
        "refused, as reading it could wait forever"
    ]
    statuses = {scene["output"]: scene["status"] for scene in manifest_scenes(out)}
    assert statuses == {"adwp.tif": "done", "pipe.tif": "failed"}
