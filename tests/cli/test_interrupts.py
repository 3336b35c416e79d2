"""Interrupts at any moment (issue 18): SIGINT and SIGTERM sent to a real `bandfusion` process
at random delays, start-up included, end it with exit 130 (SIGINT) or 143 (SIGTERM), the one
line `bandfusion: interrupted`, no traceback, no process left and no temporary or partial file;
Ctrl-C on a batch's whole process group, local workers included, does too, and keeps the
record of every map already written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from bandfusion import cli
from bandfusion.batch.manifest import file_sha256
from bandfusion.cli import INTERRUPT_EXIT
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from tests.helpers import (
    BANDFUSION,
    manifest_scenes,
    random_model,
    save_chip_model,
    stack_chip,
    wait_for,
)

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
    complete = ["map.tif", "map.tif.aux.xml"]
    if process.returncode == 0:  # it ended before the signal came: a complete map
        assert left == complete
        return
    if process.returncode == -signum:  # killed before bandfusion's code ran or after it ended
        assert err == ""
        if left == complete:  # the signal came while the interpreter exited: no handler left
            return
        assert signum == signal.SIGTERM  # SIGINT is sent from the entry point on
    else:
        assert process.returncode == INTERRUPT_EXIT[signal.Signals(signum)], err
        assert err.strip().splitlines() == ["bandfusion: interrupted"], err
    assert left == [], "a partial output or temporary file was left"


def test_an_error_raised_after_a_signal_still_ends_as_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signal can land in code that turns its KeyboardInterrupt into an error of its own (a
    C extension's callback: safetensors reported a model read that SIGTERM cut short as a
    corrupt file). Any error after a signal ends as the interrupt: 143, one line."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_received", [signal.SIGTERM])
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # pytest keeps its own handlers
    monkeypatch.setattr(os, "_exit", sys.exit)  # and its own threads: no hard exit
    with pytest.raises(SystemExit) as ended:
        cli._run(["predict", "missing.tif", "-m", "no-model", "-o", "map.tif"], debug=False)
    assert ended.value.code == INTERRUPT_EXIT[signal.SIGTERM]
    assert capsys.readouterr().err.splitlines() == ["bandfusion: interrupted"]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def chip_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_chip_model(tmp_path_factory.mktemp("chip") / "model")


@pytest.mark.timeout(300)
def test_ctrl_c_on_a_batch_ends_it_cleanly_and_records_the_finished_maps(
    tmp_path: Path, chip_model: Path
):
    """SIGINT to the whole process group, as a terminal sends Ctrl-C, while a local cluster
    maps scenes: exit 130 and `bandfusion: interrupted` alone (no worker's traceback, no
    distributed log line), no process of the group left, and every map that was in place
    when the signal came recorded `done` with its digest."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(30):  # enough that scenes are still running a second after the first ends
        stack_chip(("adwp", "akny")[i % 2], folder / f"s{i}.tif", tiles=(4, 4))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [str(BANDFUSION), "batch", str(folder), "-m", str(chip_model), "--out-dir", str(out),
         "--workers", "2", "--threads-per-worker", "1", "-q"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    with group_killed_at_exit(process):
        wait_for(lambda: "done" in statuses(out), "finished scene", timeout=200)
        time.sleep(1)  # the map that made the record, and any renamed since, reach the client
        complete = {path.name for path in out.glob("s*.tif")}
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    assert process.returncode == INTERRUPT_EXIT[signal.SIGINT], err
    lines = [line for line in err.splitlines() if line.strip()]  # click ends a ^C's line
    assert lines[0].startswith("cluster: 2 workers") and lines[1:] == ["bandfusion: interrupted"]
    wait_for(lambda: not group_alive(process.pid), "end of the batch's workers", timeout=30)
    records = {scene["output"]: scene for scene in manifest_scenes(out)}
    assert complete and all(records[name]["status"] == "done" for name in complete), records
    for name, record in records.items():
        if record["status"] == "done":
            assert file_sha256(out / name) == record["sha256"]
    assert "pending" in statuses(out)  # the signal came while scenes were still running


@contextmanager
def group_killed_at_exit(process: subprocess.Popen[str]) -> Iterator[None]:
    """Whatever the test does with `process` (the leader of its own group), no process of its
    group outlives the test."""
    try:
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def statuses(out: Path) -> list[str]:
    return [scene["status"] for scene in manifest_scenes(out)]


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def workers_ready(pid: int) -> bool:
    """Whether `pid` has started its worker processes (loky's workers and resource trackers,
    three or more) and every one of them ignores SIGINT: a worker still importing, before its
    initializer runs, would print the interrupt's traceback (the documented limit)."""
    ignoring = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        if f"PPid:\t{pid}" in lines:
            ignored = next(line for line in lines if line.startswith("SigIgn:"))
            ignoring.append(bool(int(ignored.split()[1], 16) >> (signal.SIGINT - 1) & 1))
    return len(ignoring) >= 3 and all(ignoring)


@pytest.mark.timeout(300)
def test_ctrl_c_while_the_search_fits_in_worker_processes_ends_it_cleanly(
    tmp_path: Path, data_dir: Path
):
    """SIGINT to the whole process group while `train --blend 2` fits the search's folds in
    worker processes: exit 130 and the one line (no worker's traceback, no resource tracker's
    warning of leaked semaphores), no model directory, no process of the group left."""
    out = tmp_path / "model"
    process = subprocess.Popen(
        [str(BANDFUSION), "train", str(data_dir / S2), "--labels",
         str(data_dir / "sen1floods11_spain/Spain_7370579_LabelHand.tif"), "--unlabelled",
         "-1", "--blend", "2", "-o", str(out), "-q"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    with group_killed_at_exit(process):
        wait_for(lambda: workers_ready(process.pid), "worker processes", timeout=120)
        time.sleep(1)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == INTERRUPT_EXIT[signal.SIGINT], err
    assert err.strip().splitlines() == ["bandfusion: interrupted"], err
    assert not out.exists()
    wait_for(lambda: not group_alive(process.pid), "end of the workers", timeout=30)
