"""The spectral-fusion network, its checkpoint format and estimators; no file or CLI code."""

from .checkpoint import (
    FORMAT_VERSION,
    ModelMetadata,
    TrainedModel,
    describe,
    load_model,
    save_model,
)
from .fusion import SpectralFusionNet

__all__ = [
    "FORMAT_VERSION",
    "ModelMetadata",
    "SpectralFusionNet",
    "TrainedModel",
    "describe",
    "load_model",
    "save_model",
]
