"""Interrupts at any moment (issue 18): SIGINT and SIGTERM sent to a real `bandfusion` process
at random delays, start-up included, end it with exit 130 (SIGINT) or 143 (SIGTERM), the one
line `bandfusion: interrupted`, no traceback, no process left and no temporary or partial file."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from bandfusion.cli import INTERRUPT_EXIT
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from tests.helpers import BANDFUSION, random_model, wait_for

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    scene = open_scene(data_dir / S2)
    return save_model(random_model(scene, [0, 1]), tmp_path_factory.mktemp("m") / "model")


def bandfusion_runs(pid: int) -> bool:
    """Whether the process has reached bandfusion's entry point: it then catches SIGTERM, which
    Python alone leaves at its default. Before that, SIGINT is Python's own (see the docs)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # ended already
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


@given(signum=st.sampled_from([signal.SIGINT, signal.SIGTERM]), delay=st.floats(0, 3))
@fuzz(examples=8)
def test_an_interrupt_at_any_moment_of_predict_ends_it_cleanly(
    signum: int, delay: float, data_dir: Path, model_dir: Path
):
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "map.tif"
        process = subprocess.Popen(
            [str(BANDFUSION), "predict", str(data_dir / S2), "-m", str(model_dir),
             "-o", str(out), "-q"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if signum == signal.SIGINT:  # SIGTERM is sent from the very start: Python ignores none
            wait_for(lambda: bandfusion_runs(process.pid), "entry point")
        time.sleep(delay)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
        left = sorted(path.name for path in Path(folder).iterdir())
    if process.returncode == 0:  # it ended before the signal came: a complete map
        assert left == ["map.tif", "map.tif.aux.xml"]
        return
    if process.returncode == -signum:  # killed before Python ran any of bandfusion's code
        assert signum == signal.SIGTERM and err == ""
    else:
        assert process.returncode == INTERRUPT_EXIT[signal.Signals(signum)], err
        assert err.strip().splitlines() == ["bandfusion: interrupted"], err
    assert left == [], "a partial output or temporary file was left"
