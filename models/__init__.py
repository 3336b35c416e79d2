"""The spectral-fusion network, its checkpoint format and estimators; no file or CLI code.

The network, the model format and the indices load with the package; the scikit-learn parts
(estimator, baselines, training loop) load on first use.
"""

from typing import TYPE_CHECKING

from bandfusion.lazy import make_lazy

from .checkpoint import (
    FORMAT_VERSION,
    ModelMetadata,
    TrainedModel,
    describe,
    load_model,
    save_model,
)
from .fusion import SpectralFusionNet
from .indices import INDICES, append_indices

if TYPE_CHECKING:
    from .baselines import BASELINES, make_baseline
    from .estimator import SpectralFusionClassifier
    from .training import FitResult, FitSettings, fit_pixels

make_lazy(
    __name__,
    {
        "BASELINES": ".baselines",
        "make_baseline": ".baselines",
        "SpectralFusionClassifier": ".estimator",
        "FitResult": ".training",
        "FitSettings": ".training",
        "fit_pixels": ".training",
    },
)

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
    "describe",
    "fit_pixels",
    "load_model",
    "make_baseline",
    "save_model",
]
