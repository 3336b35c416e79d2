"""One device rule for the engine, the CLI and the estimator, with one error in engine terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bandfusion.errors import BandfusionError, DeviceError
from bandfusion.models.devices import resolve_device
from bandfusion.models.estimator import SpectralFusionClassifier

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@NO_CUDA
def test_cuda_request_without_a_gpu_is_a_user_error() -> None:
    with pytest.raises(BandfusionError, match="CUDA is not available") as caught:
        resolve_device("cuda")
    assert isinstance(caught.value, DeviceError)
    assert "--device" not in str(caught.value)  # the CLI adds its flag
    assert resolve_device("auto").type == "cpu"


def test_names_torch_does_not_read_are_refused() -> None:
    with pytest.raises(DeviceError, match="gpu0: not a device"):
        resolve_device("gpu0")
    assert resolve_device("cpu") == torch.device("cpu")


@NO_CUDA
def test_the_estimator_refuses_cuda_as_the_engine_does() -> None:
    table = np.random.default_rng(0).random((40, 3))
    with pytest.raises(DeviceError, match="CUDA is not available"):
        SpectralFusionClassifier(device="cuda", epochs=1).fit(table, np.arange(40) % 2)
