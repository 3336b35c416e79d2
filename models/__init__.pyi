"""Public names of `bandfusion.models`, read by type checkers and `lazy_loader.attach_stub`."""

from .baselines import BASELINES, make_baseline
from .checkpoint import TrainedModel, load_model, save_model
from .estimator import SpectralFusionClassifier
from .fusion import SpectralFusionNet
from .indices import INDICES, append_indices
from .metadata import FORMAT_VERSION, ModelMetadata
from .training import FitResult, FitSettings, fit_pixels

__all__ = [
    "BASELINES",
    "FORMAT_VERSION",
    "INDICES",
    "FitResult",
    "FitSettings",
    "ModelMetadata",
    "SpectralFusionClassifier",
    "SpectralFusionNet",
    "TrainedModel",
    "append_indices",
    "fit_pixels",
    "load_model",
    "make_baseline",
    "save_model",
]
