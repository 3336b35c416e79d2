"""`SpectralFusionClassifier`: the fusion network as a scikit-learn classifier.

It trains with the same loop as `bandfusion.train` (`fit_pixels`) on an (n, bands) table, so it
drops into Pipeline, cross_val_score, GridSearchCV and permutation_importance, and it saves to
and loads from the same safetensors + JSON model directory as every other bandfusion model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bandfusion.colours import default_colours
from bandfusion.models.blend import fit_blend
from bandfusion.models.checkpoint import TrainedModel, load_model, save_model
from bandfusion.models.devices import resolve_device
from bandfusion.models.fusion import Activation, Norm
from bandfusion.models.indices import append_indices, resolve_roles
from bandfusion.models.metadata import ModelMetadata
from bandfusion.models.selection import select_settings
from bandfusion.models.training import FitSettings, predict_logits
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

_DEFAULTS = FitSettings()
_FIT_FIELDS = (
    "hidden",
    "norm",
    "activation",
    "dropout",
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "patience",
    "members",
    "bins",
    "clip",
)


class SpectralFusionClassifier(ClassifierMixin, BaseEstimator):
    """Per-pixel classifier: a SpectralFusionNet trained on rows of band values.

    Parameters mirror `bandfusion.train` (defaults from FitSettings). `class_weight` is None
    (every pixel counts the same, as in every scikit-learn classifier), "balanced" or a
    {label: weight} dict; `bandfusion train` balances by default instead, since a map's rare
    classes matter as much as its common ones. `validation_fraction` of each class is held
    out at random for early stopping on macro-F1; the default 0 scores the training pixels
    instead: every pixel trains and the net stops late in the cosine schedule, which spatial
    cross-validation preferred on both benchmark data sets (bench/RESULTS.md, issue 4).
    `indices` (e.g. ("NDWI", "MNDWI")) are appended as extra inputs from the bands that
    `band_roles` names ({"green": "B3", ...}; default: Sentinel-2 band names), and recomputed
    at prediction. Bands are the DataFrame's column names, else b1..bn. `random_state` seeds
    torch and the hold-out; `device` is "cpu", "cuda[:N]" or "auto". With `search` (the
    default) `fit` first scores a few candidate settings, each a change to these parameters,
    by cross-validation on the training rows (bandfusion.models.selection; folds of whole
    `groups` where `fit` is given them, else stratified) and trains the best; `search=False`
    trains exactly these parameters, in one fit. `blend` k > 1 fits the search's k best
    candidates instead of the best alone and averages their logits, saved as one network
    (bandfusion.models.blend); averaging two networks of different kinds evens out much of
    one fit's variance, which on a small table gained more than any one candidate did
    (bench/RESULTS.md), at the cost of a second fit (beside the first where a core is free)
    and a wider network to predict with. `bins` > 0 encodes each band in that many
    quantile bins before the first layer (piecewise-linear, bandfusion.models.embedding), so
    the net draws sharp per-band thresholds as trees do; one of the search's candidates does.
    `clip` > 0 saturates each band beyond its `clip` and 1 − `clip` quantiles, so outliers
    cannot drive the logits.

    Fitted attributes: classes_, n_features_in_, feature_names_in_ (DataFrame input only),
    bands_, band_roles_, net_, seed_, history_, n_iter_ (epochs run), selection_ (the search's
    record, or None).
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = _DEFAULTS.hidden,
        norm: Norm = _DEFAULTS.norm,
        activation: Activation = _DEFAULTS.activation,
        dropout: float = _DEFAULTS.dropout,
        epochs: int = _DEFAULTS.epochs,
        batch_size: int = _DEFAULTS.batch_size,
        learning_rate: float = _DEFAULTS.learning_rate,
        weight_decay: float = _DEFAULTS.weight_decay,
        patience: int = _DEFAULTS.patience,
        members: int = _DEFAULTS.members,
        bins: int = _DEFAULTS.bins,
        clip: float = _DEFAULTS.clip,
        class_weight: str | Mapping[Any, float] | None = None,
        validation_fraction: float = 0.0,
        search: bool = True,
        blend: int = 2,
        indices: tuple[str, ...] = (),
        band_roles: Mapping[str, str] | None = None,
        device: str = "cpu",
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.hidden = hidden
        self.norm = norm
        self.activation = activation
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.members = members
        self.bins = bins
        self.clip = clip
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.search = search
        self.blend = blend
        self.indices = indices
        self.band_roles = band_roles
        self.device = device
        self.random_state = random_state

    def fit(self, X: Any, y: Any, groups: Any = None) -> SpectralFusionClassifier:
        """Train on X (n, bands) and labels y (n,); returns self.

        `groups` (n,), optional, says which rows belong together, e.g. the spatial block each
        pixel lies in: the search's folds then keep each group whole, as GroupKFold does. Give
        it for pixels of a scene: stratified folds put a pixel's neighbours in training, which
        rewards settings that memorise local detail over those that carry to new places.
        """
        X, y = validate_data(self, X, y, dtype=np.float32)
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != y.shape:
                raise ValueError(f"groups must hold one id per row: {groups.shape} for {y.shape}")
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"training needs two classes or more; y holds one class, {classes[0]!r}"
            )
        if not (isinstance(self.blend, int | np.integer) and self.blend >= 1):
            raise ValueError(f"blend must be a positive integer, not {self.blend!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), not {self.validation_fraction}"
            )
        self.classes_ = classes
        self.bands_ = self._input_names()
        self.band_roles_ = resolve_roles(self.indices, self.bands_, self.band_roles)
        self.seed_ = _seed(self.random_state)
        train, val = _holdout(y_index, self.validation_fraction, self.seed_)
        inputs = self._inputs(X)
        device = resolve_device(self.device)

        def class_weights(rows: np.ndarray) -> np.ndarray | None:
            if self.class_weight is None:
                return None
            return compute_class_weight(self.class_weight, classes=classes, y=classes[rows])

        settings = FitSettings(**{k: getattr(self, k) for k in _FIT_FIELDS}, seed=self.seed_)
        self.selection_ = None
        members = [settings]
        if self.search:
            selection = select_settings(
                inputs[train],
                y_index[train],
                n_classes=len(classes),
                settings=settings,
                class_weights=class_weights,
                groups=None if groups is None else groups[train],
                device=device,
                blend=int(self.blend),
            )
            settings, self.selection_ = selection.settings, selection.to_dict()
            members = selection.members()
        fit = fit_blend(
            inputs[train],
            y_index[train],
            n_classes=len(classes),
            members=members,
            x_val=inputs[val],
            y_val=y_index[val],
            class_weights=class_weights(y_index[train]),
            device=device,
        )
        self.settings_ = settings
        self.net_ = fit.net
        self.history_ = fit.history
        self.n_iter_ = len(fit.history)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, classes) in the order of classes_, float64."""
        logits = self._logits(X)
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class label of each row of X."""
        best = self._logits(X).argmax(dim=1).numpy()
        return self.classes_[best]

    def _logits(self, X: Any) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        device = resolve_device(self.device)
        return predict_logits(self.net_.to(device), self._inputs(X), device)

    def _input_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(name) for name in names]
        return [f"b{i + 1}" for i in range(self.n_features_in_)]

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """The network's input table: the bands, then the declared indices."""
        if not self.indices:
            return X
        return append_indices(X, self.bands_, self.indices, self.band_roles_)

    # ---- the bandfusion model format ------------------------------------------------------

    def to_model(
        self,
        *,
        class_names: Sequence[str] | None = None,
        class_colors: Sequence[tuple[int, int, int]] | None = None,
    ) -> TrainedModel:
        """The fitted network with metadata, as `save_model` writes it; labels must be integers.

        Derived indices and their band roles are declared in the metadata, so prediction
        (`predict_scene`, `from_model`) recomputes them from the bands.
        """
        check_is_fitted(self)
        if self.classes_.dtype.kind not in "iu":
            raise ValueError(f"only integer class labels can be saved, not {self.classes_.dtype}")
        ids = [int(c) for c in self.classes_]
        training = {
            **self.get_params(),
            "random_state": self.seed_,
            "estimator": type(self).__name__,
        }
        selection = getattr(self, "selection_", None)
        if selection is not None:
            training["selection"] = selection
        if selection is not None and "blended" not in selection:
            # The chosen settings, so that a clone of the loaded model refits this model; a
            # blend keeps the caller's parameters, whose search and blend refit it.
            training.update({k: getattr(self.settings_, k) for k in _FIT_FIELDS})
            training.update(search=False)
        meta = ModelMetadata(
            bands=list(self.bands_),
            class_ids=ids,
            class_names=list(class_names or [f"class {i}" for i in ids]),
            class_colors=list(class_colors or default_colours(len(ids))),
            architecture=self.net_.config(),
            training=training,
            indices=list(self.indices),
            band_roles=dict(self.band_roles_),
        )
        return TrainedModel(self.net_.cpu().eval(), meta)

    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Write the model directory `path` (see `to_model` for the keywords)."""
        return save_model(self.to_model(**metadata), path)

    @classmethod
    def from_model(cls, model: TrainedModel) -> SpectralFusionClassifier:
        """A fitted classifier around a trained model (from `bandfusion.train` or `to_model`).

        Its parameters are those recorded in the model, so a clone refits the same way.
        """
        meta, training = model.meta, model.meta.training
        indices = tuple(meta.indices)
        net = model.net
        architecture: dict[str, Any] = {
            "hidden": tuple(net.hidden),
            "norm": net.norm,
            "activation": net.activation,
            "dropout": net.dropout,
            "members": net.members,
        }
        params = {k: training[k] for k in _FIT_FIELDS if k in training}
        if "blended" in training.get("selection", {}):  # several nets side by side: as given
            architecture = {"hidden": tuple(params.get("hidden", _DEFAULTS.hidden))}
        elif params.get("bins"):  # the saved net's first hidden layer is the bins' encoding
            architecture["hidden"] = tuple(net.hidden[1:])
        estimator = cls(
            **{**params, **architecture},
            class_weight=_stored_class_weight(training.get("class_weight", "balanced")),
            search=bool(training.get("search", False)),
            blend=int(training.get("blend", 1)),
            indices=indices,
            band_roles=meta.band_roles or None,
            random_state=training.get("random_state", training.get("seed", 0)),
        )
        estimator.classes_ = np.asarray(meta.class_ids)
        estimator.n_features_in_ = len(meta.bands)
        estimator.bands_ = list(meta.bands)
        estimator.band_roles_ = resolve_roles(indices, meta.bands, meta.band_roles)
        estimator.seed_ = _seed(estimator.random_state)
        estimator.net_ = net.eval()
        return estimator

    @classmethod
    def load(cls, path: str | Path) -> SpectralFusionClassifier:
        """A fitted classifier from a model directory (ModelFileError if it is not valid)."""
        return cls.from_model(load_model(path))


def _seed(random_state: int | np.random.RandomState | None) -> int:
    """An int seed: `random_state` itself when it is one, else drawn from it."""
    if isinstance(random_state, int | np.integer):
        return int(random_state)
    return int(check_random_state(random_state).randint(2**31 - 1))


def _holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices: floor(fraction · count) random rows of each class."""
    rng = np.random.default_rng(seed)
    val = np.concatenate(
        [
            rng.permutation(rows)[: int(fraction * len(rows))]
            for rows in (np.flatnonzero(y == k) for k in np.unique(y))
        ]
    )
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _stored_class_weight(value: object) -> str | dict[Any, float] | None:
    """class_weight as model.json records it: `train`'s bool, or the estimator's parameter."""
    if value is True or value == "balanced":
        return "balanced"
    if isinstance(value, dict):
        return {json.loads(key): float(weight) for key, weight in value.items()}
    return None
