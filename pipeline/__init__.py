"""bandfusion: per-pixel land-cover maps from multispectral rasters.

The public API mirrors the CLI: open_scene → train → save_model / load_model → predict_scene →
write_geotiff, and evaluate. Parts built on scikit-learn, SciPy or matplotlib (training,
evaluation, benchmarks, explanations, .mat cubes) are imported on first use.
"""

__version__ = "0.1.0"  # first: bandfusion.models reads it while the imports below run

from typing import TYPE_CHECKING

from bandfusion.models.checkpoint import ModelMetadata, TrainedModel, load_model, save_model
from bandfusion.models.fusion import SpectralFusionNet

from .errors import (
    BandfusionError,
    BandfusionWarning,
    LabelError,
    ModelFileError,
    OutputError,
    SceneError,
)
from .geotiff import write_geotiff
from .grid import Grid
from .labels import Labels, read_labels
from .lazy import make_lazy
from .legend import Legend, load_legend
from .predict import predict_proba_scene, predict_scene
from .sampling import sample_pixels, spatial_block_split
from .scene import open_scene

if TYPE_CHECKING:
    from bandfusion.models.baselines import make_baseline
    from bandfusion.models.estimator import SpectralFusionClassifier

    from .benchmark import Benchmark, Protocol, run_benchmark, spatial_cv
    from .evaluate import EvaluationReport, evaluate
    from .explain import Explanation, explain
    from .hyperspectral import read_mat_scene
    from .train import TrainingResult, TrainingSettings, train

make_lazy(
    __name__,
    {
        "make_baseline": "bandfusion.models.baselines",
        "SpectralFusionClassifier": "bandfusion.models.estimator",
        "Benchmark": ".benchmark",
        "Protocol": ".benchmark",
        "run_benchmark": ".benchmark",
        "spatial_cv": ".benchmark",
        "EvaluationReport": ".evaluate",
        "evaluate": ".evaluate",
        "Explanation": ".explain",
        "explain": ".explain",
        "read_mat_scene": ".hyperspectral",
        "TrainingResult": ".train",
        "TrainingSettings": ".train",
        "train": ".train",
    },
)

__all__ = [
    "BandfusionError",
    "BandfusionWarning",
    "Benchmark",
    "EvaluationReport",
    "Explanation",
    "Grid",
    "LabelError",
    "Labels",
    "Legend",
    "ModelFileError",
    "ModelMetadata",
    "OutputError",
    "Protocol",
    "SceneError",
    "SpectralFusionClassifier",
    "SpectralFusionNet",
    "TrainedModel",
    "TrainingResult",
    "TrainingSettings",
    "__version__",
    "evaluate",
    "explain",
    "load_legend",
    "load_model",
    "make_baseline",
    "open_scene",
    "predict_proba_scene",
    "predict_scene",
    "read_labels",
    "read_mat_scene",
    "run_benchmark",
    "sample_pixels",
    "save_model",
    "spatial_block_split",
    "spatial_cv",
    "train",
    "write_geotiff",
]
