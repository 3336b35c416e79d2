"""The guard: kernels made wrong on purpose, crashing or failing to compile are caught by their
check against the CPU kernel, warned about once, and replaced by the next, so the map stays the
CPU's. Where there is no GPU the engine's device path (runner, fused kernel under Triton's
interpreter, torch kernel) runs on the CPU; where there is one, these tests run on the GPU and are
marked `gpu`, so that `pytest -m gpu` runs them on the card."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr
from bandfusion.engine import cuda, guard
from bandfusion.engine.guard import PROBE_PIXELS, probe_block
from bandfusion.engine.predict import PixelClassifier, _guarded_runner
from bandfusion.errors import BandfusionWarning
from bandfusion.io.nodata import band_nodata, valid_mask
from bandfusion.io.scene import open_scene
from bandfusion.models import triton_kernel
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.models.inference import TorchKernel

from tests.helpers import random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
pytestmark = [pytest.mark.gpu] if DEVICE.type == "cuda" else []
OVERFLOWS = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
"""The probe's extreme pixels overflow fp16 in the interpreter's numpy; the kernel says so."""


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test as a new process: no kernel checked yet. Under the interpreter, big blocks
    (it pays per program, not per pixel)."""
    monkeypatch.setattr(guard, "_CHOSEN", {})
    if DEVICE.type == "cpu":
        monkeypatch.setattr(triton_kernel, "BLOCK_PIXELS", 1024)


@pytest.fixture(scope="module")
def scene(data_dir: Path) -> xr.DataArray:
    """A corner of the water chip: 13 int16 bands, some nodata."""
    return open_scene(data_dir / S2).isel(y=slice(0, 96), x=slice(0, 96)).load()


@pytest.fixture(scope="module")
def model(scene: xr.DataArray) -> TrainedModel:
    return random_model(scene, [1, 2, 3, 4, 8], hidden=(32, 32))


@pytest.fixture(scope="module")
def cpu_map(scene: xr.DataArray, model: TrainedModel) -> np.ndarray:
    return PixelClassifier(model, torch.device("cpu")).classify_block(
        scene.values, band_nodata(scene)
    )


def device_classifier(model: TrainedModel) -> PixelClassifier:
    """The engine's classifier on this machine's device path: the GPU's where there is one,
    else the same runner and guard on the CPU, the fused kernel under Triton's interpreter."""
    classifier = PixelClassifier(model, DEVICE)
    if classifier.cuda is None:
        kernel = TorchKernel.from_net(model.net.eval())
        classifier.cuda = _guarded_runner(model, kernel, DEVICE, (classifier.token, "cpu", "fp32"))
    return classifier


def labelled(
    model: TrainedModel, scene: xr.DataArray
) -> tuple[np.ndarray, list[str], PixelClassifier]:
    """The class map of `scene` on the device path, the bandfusion warnings raised in making the
    classifier and running it, and the classifier."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier = device_classifier(model)
        result = classifier.classify_block(scene.values, band_nodata(scene))
    warned = [str(w.message) for w in caught if issubclass(w.category, BandfusionWarning)]
    return result, warned, classifier


def warned_once(model: TrainedModel, scene: xr.DataArray, cpu_map: np.ndarray) -> str:
    """The one warning the device path gives, having made the CPU's map regardless."""
    result, warned, _ = labelled(model, scene)
    np.testing.assert_array_equal(result, cpu_map)
    assert len(warned) == 1 and "\n" not in warned[0]
    return warned[0]


class Shifted:
    """A kernel made wrong on purpose: each label is its neighbour's, and it is sure of them,
    as an indexing bug would have it."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernel, name)

    def classify(self, *args: Any, **kwargs: Any) -> Any:
        """The torch kernel's labels, or the fused kernel's labels and doubt."""
        result = self.kernel.classify(*args, **kwargs)
        if isinstance(result, torch.Tensor):
            return result.roll(1)
        labels, doubt = result
        return labels.roll(1), torch.zeros_like(doubt)

    def classify_with_doubt(self, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels, doubt = self.kernel.classify_with_doubt(table)
        return labels.roll(1), torch.zeros_like(doubt)


class Crashing:
    """A fused kernel that builds, then crashes on its first pixels, as a bad driver would."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernel, name)

    def classify(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore text")


def with_fused(monkeypatch: pytest.MonkeyPatch, wrapper: type) -> None:
    """Make the runner's fused kernel `wrapper(the real one)`."""
    build = cuda._fused
    monkeypatch.setattr(cuda, "_fused", lambda kernel: wrapper(build(kernel)))


def with_torch(monkeypatch: pytest.MonkeyPatch, wrapper: type) -> None:
    """Make the runner's torch kernel on the device `wrapper(the real one)`."""
    of = cuda.DeviceKernels.of
    monkeypatch.setattr(cuda.DeviceKernels, "of", classmethod(lambda _, k: of(wrapper(k))))


@OVERFLOWS
def test_trusted_kernels_pass_silently_and_the_fused_one_runs(scene, model, cpu_map) -> None:
    result, warned, classifier = labelled(model, scene)
    np.testing.assert_array_equal(result, cpu_map)
    assert warned == []
    assert classifier.cuda is not None
    assert classifier.cuda.runner.names == [cuda.FUSED, cuda.TORCH]
    assert {classifier.cuda.key: cuda.FUSED} == guard._CHOSEN


@OVERFLOWS
def test_a_wrong_fused_kernel_is_dropped_with_one_warning(scene, model, cpu_map, monkeypatch):
    with_fused(monkeypatch, Shifted)
    warning = warned_once(model, scene, cpu_map)
    assert "fused Triton kernel" in warning and "bound rules out" in warning
    assert "running the torch kernel instead" in warning
    # Checked once per process: later chunks, and other classifiers of the model, run unwarned.
    again, warned_again, classifier = labelled(model, scene)
    np.testing.assert_array_equal(again, cpu_map)
    assert warned_again == []
    assert {classifier.cuda.key: cuda.TORCH} == guard._CHOSEN


@OVERFLOWS
def test_a_crashing_fused_kernel_is_dropped_with_one_warning(scene, model, cpu_map, monkeypatch):
    with_fused(monkeypatch, Crashing)
    warning = warned_once(model, scene, cpu_map)
    assert "failed (CUDA error: an illegal memory access was encountered)" in warning


def test_a_fused_kernel_that_fails_to_compile_is_dropped_with_one_warning(
    scene, model, cpu_map, monkeypatch
) -> None:
    def compiler_error() -> None:
        raise RuntimeError("PTX assembly aborted due to errors")

    monkeypatch.setattr(triton_kernel, "_compiled", compiler_error)
    warning = warned_once(model, scene, cpu_map)
    assert "failed to build (PTX assembly aborted due to errors)" in warning
    assert list(guard._CHOSEN.values()) == [cuda.TORCH]


def test_a_wrong_torch_kernel_leaves_the_cpu_kernel(scene, model, cpu_map, monkeypatch) -> None:
    """Without Triton the torch kernel runs; made wrong, it gives way to the CPU kernel."""
    monkeypatch.setattr(triton_kernel, "triton_available", lambda: False)
    with_torch(monkeypatch, Shifted)
    warning = warned_once(model, scene, cpu_map)
    assert "torch kernel" in warning and "running the CPU kernel instead" in warning


def test_an_approximate_kernel_may_change_few_labels_not_many(scene, monkeypatch) -> None:
    """Networks the bound does not cover (GELU) are checked by agreement on the real pixels."""
    gelu = random_model(scene, [1, 2, 3], hidden=(16,))
    gelu.net.activation, gelu.net.act = "gelu", torch.nn.GELU()
    cpu = PixelClassifier(gelu, torch.device("cpu")).classify_block(
        scene.values, band_nodata(scene)
    )
    result, warned, _ = labelled(gelu, scene)
    np.testing.assert_array_equal(result, cpu)
    assert warned == []
    monkeypatch.setattr(guard, "_CHOSEN", {})
    with_torch(monkeypatch, Shifted)
    assert "changed" in warned_once(gelu, scene, cpu)


def test_the_probe_holds_real_pixels_then_edge_cases(scene) -> None:
    nodata = (0.0,) * 13
    block = scene.values
    probe, real = probe_block(block, nodata)
    assert probe.shape[:2] == (13, 1) and probe.dtype == block.dtype
    valid = block.reshape(13, -1)[:, valid_mask(block, nodata).ravel()]
    assert real == min(PROBE_PIXELS, valid.shape[1])
    pixels = probe[:, 0, :]
    assert np.isin(pixels[:, :real].T.tolist(), valid.T.tolist()).all()
    edges = pixels[:, real:]
    for extreme in (-32768, 32767, 0):  # int16: every band at once
        assert (edges == extreme).all(axis=0).any()
    assert (edges == -1).any() and (edges == 1).any()  # nodata's neighbours
    unsigned, _ = probe_block(block.clip(0).astype(np.uint16), nodata)
    assert unsigned.max() == 65535 and 1 in unsigned  # 0 - 1 is no uint16: no neighbour there
    floats, _ = probe_block(block.astype(np.float32), (-9999.0,) * 13)
    values = set(floats[0, 0].tolist())
    largest = float(np.finfo(np.float32).max)
    assert {largest, -largest, float(np.nextafter(np.float32(-9999), np.float32(0)))} <= values


def test_a_first_chunk_of_nodata_still_probes_the_edge_cases() -> None:
    block = np.zeros((3, 4, 4), dtype=np.uint8)
    probe, real = probe_block(block, (0.0, 0.0, 0.0))
    assert real == 0 and probe.shape[2] > 0
