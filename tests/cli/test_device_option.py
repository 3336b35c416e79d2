"""`--device` in the CLI: a device this machine lacks is one line and exit 2, and `bandfusion info
MODEL --device` says which kernel the model would run here, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from bandfusion.cli import main
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.helpers import random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    save_model(random_model(open_scene(data_dir / S2), [0, 1], hidden=(8,)), out)
    return out


def exit_code(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run the command in this process: its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in argv])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line_and_exit_2(capsys, data_dir, model_dir, tmp_path):
    code, _, err = exit_code(
        capsys, "predict", data_dir / S2, "-m", model_dir, "-o", tmp_path / "map.tif",
        "--device", "cuda", "--quiet",
    )  # fmt: skip
    assert code == 2
    assert err == "bandfusion: error: --device cuda: CUDA is not available on this machine\n"
    assert not (tmp_path / "map.tif").exists()


def test_a_name_that_is_no_device_is_one_line_and_exit_2(capsys, model_dir):
    code, _, err = exit_code(capsys, "info", model_dir, "--device", "gpu0")
    assert (code, err.count("\n")) == (2, 1)
    assert "--device gpu0: not a device" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_info_says_which_kernel_the_model_would_run_and_why(capsys, model_dir):
    code, out, _ = exit_code(capsys, "info", model_dir, "--device", "auto")
    assert code == 0
    assert out.splitlines()[-1] == "kernel: cpu: CPU kernel (no CUDA device)"
    code, out, _ = exit_code(capsys, "info", model_dir)
    assert code == 0 and "kernel:" not in out


def test_info_device_needs_a_model(capsys, data_dir):
    code, _, err = exit_code(capsys, "info", data_dir / S2, "--device", "cpu")
    assert code == 2 and "is no model" in err
