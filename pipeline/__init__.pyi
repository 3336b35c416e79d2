"""Public names of `bandfusion`, read by type checkers and by `lazy_loader.attach_stub`."""

from .engine.compare import Benchmark, Protocol, run_benchmark, spatial_cv
from .engine.evaluate import EvaluationReport, evaluate
from .engine.explain import Explanation, explain
from .engine.predict import predict_proba_scene, predict_scene
from .engine.sampling import sample_pixels, spatial_block_split
from .engine.train import TrainingResult, TrainingSettings, train
from .errors import (
    BandfusionError,
    BandfusionWarning,
    LabelError,
    ModelFileError,
    OutputError,
    SceneError,
)
from .io.cloudmask import MaskPolicy, mask_scene
from .io.geotiff import write_geotiff
from .io.grid import Grid
from .io.hyperspectral import read_mat_scene
from .io.labels import Labels, read_labels
from .io.legend import Legend, load_legend
from .io.products import Product, read_product
from .io.scene import open_scene
from .models.baselines import make_baseline
from .models.checkpoint import TrainedModel, load_model, save_model
from .models.estimator import SpectralFusionClassifier
from .models.fusion import SpectralFusionNet
from .models.metadata import ModelMetadata

__version__: str

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
    "MaskPolicy",
    "ModelFileError",
    "ModelMetadata",
    "OutputError",
    "Product",
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
    "mask_scene",
    "open_scene",
    "predict_proba_scene",
    "predict_scene",
    "read_labels",
    "read_mat_scene",
    "read_product",
    "run_benchmark",
    "sample_pixels",
    "save_model",
    "spatial_block_split",
    "spatial_cv",
    "train",
    "write_geotiff",
]
