"""Which torch device a device name means: the one rule the engine, the CLI and the estimator share.

Here, in `bandfusion.models`, because the estimator needs it and models import nothing of the
engine; the engine imports it from here.
"""

from __future__ import annotations

import torch
from bandfusion.errors import DeviceError


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA when torch sees a GPU, else the CPU; any other name as torch reads it.

    A name torch does not read, or CUDA where this machine has none, is a `DeviceError`.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise DeviceError(device, "not a device (use auto, cpu or cuda)") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(device, "CUDA is not available on this machine")
    return resolved
