"""Band importance, mixing weights and spectral signatures; physically sensible on real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from bandfusion import Grid, open_scene, predict_scene, read_labels, save_model
from bandfusion.cli import main
from bandfusion.display.figures import mixing_figure
from bandfusion.engine.explain import explain
from bandfusion.engine.train import train
from bandfusion.io.labels import Labels
from bandfusion.io.legend import default_legend
from bandfusion.io.nodata import nodata_coord
from bandfusion.models import SpectralFusionClassifier

S2 = "sen1floods11_spain"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic(seed: int = 0) -> tuple[xr.DataArray, Labels, np.ndarray, np.ndarray]:
    """A 4-band 30×40 scene whose class (1 or 2) is decided by band b2 alone."""
    rng = np.random.default_rng(seed)
    data = rng.normal(1000, 100, size=(4, 30, 40)).astype(np.float32)
    classes = np.where(data[1] > 1000, 2, 1)
    grid = Grid(None, Affine.identity(), 40, 30)
    scene = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": ["b1", "b2", "b3", "b4"],
            "source": ("band", ["synthetic"] * 4),
            "nodata": nodata_coord([None] * 4),
            **grid.coords(),
        },
        attrs=grid.to_attrs(),
    )
    labels = Labels(classes, np.ones(classes.shape, bool), default_legend([1, 2]), "synthetic")
    return scene, labels, data.reshape(4, -1).T, classes.ravel()


def test_explanation_of_a_one_band_problem() -> None:
    scene, labels, x, y = synthetic()
    clf = SpectralFusionClassifier(hidden=(8,), epochs=30, random_state=0, search=False).fit(x, y)
    explanation = explain(clf.to_model(), scene, labels, n_repeats=3)
    assert explanation.ranking()[0] == "b2"
    assert (
        explanation.importance_mean[1] > 10 * np.abs(explanation.importance_mean[[0, 2, 3]]).max()
    )
    assert explanation.mixing_weights.shape == (8, 4)
    np.testing.assert_allclose(explanation.signature_mean[0], x[y == 1].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(explanation.signature_std[1], x[y == 2].std(axis=0), rtol=1e-4)
    assert explanation.class_pixels.tolist() == [int((y == 1).sum()), int((y == 2).sum())]
    document = json.loads(json.dumps(explanation.to_dict()))
    assert document["ranking"][0] == "b2" and document["signatures"]["2"]["pixels"] > 0


@pytest.mark.parametrize(
    "options",
    [{"bins": 8, "search": False}, {"search": True, "blend": 2}],
    ids=["binned", "blend"],
)
def test_binned_and_blended_models_rank_their_bands_and_claim_no_band_mixing(
    options: dict[str, object],
) -> None:
    scene, labels, x, y = synthetic()
    clf = SpectralFusionClassifier(hidden=(8,), epochs=30, **options).fit(x, y)  # type: ignore[arg-type]
    explanation = explain(clf.to_model(), scene, labels, n_repeats=3)
    assert explanation.ranking()[0] == "b2"
    assert explanation.mixing_weights.shape == (0, 4)  # its first layer only encodes bands
    assert json.loads(json.dumps(explanation.to_dict()))["mixing_weights"]["weights"] == []
    figure = mixing_figure(explanation)
    assert "No band mixing" in figure.texts[0].get_text()


def test_a_clipped_model_mixes_its_bands_inside_the_clip() -> None:
    scene, labels, x, y = synthetic()
    clf = SpectralFusionClassifier(hidden=(8,), epochs=30, clip=0.01, search=False).fit(x, y)
    explanation = explain(clf.to_model(), scene, labels, n_repeats=3)
    assert explanation.ranking()[0] == "b2"
    weights = explanation.mixing_weights
    assert weights.shape == (8, 4)  # the layer after the clamps, not the clamps' own
    assert np.abs(weights[:, 1]).mean() > np.abs(weights[:, [0, 2, 3]]).mean()


def test_derived_bands_are_mixed_but_not_shuffled() -> None:
    scene, labels, x, y = synthetic()
    roles = {"green": "b2", "nir": "b3"}
    clf = SpectralFusionClassifier(
        hidden=(8,), epochs=10, indices=("NDWI",), band_roles=roles, search=False
    ).fit(x, y)
    explanation = explain(clf.to_model(), scene, labels, n_repeats=2)
    assert explanation.bands == ["b1", "b2", "b3", "b4"]
    assert explanation.inputs == ["b1", "b2", "b3", "b4", "NDWI"]
    assert explanation.mixing_weights.shape == (8, 5)


def test_explain_command_needs_a_recorded_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    _, _, x, y = synthetic()
    model = (
        SpectralFusionClassifier(hidden=(4,), epochs=2, search=False).fit(x, y).save(tmp_path / "m")
    )
    labels = data_dir / S2 / "Spain_7370579_LabelHand.tif"
    args = ["explain", "-m", str(model), str(data_dir / S2 / "Spain_7370579_S2Hand.tif")]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--labels", str(labels), "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "records no validation split" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # the folder it made for its files is gone again
    with pytest.raises(SystemExit):
        main([*args, "--labels", str(labels), "--scoring", "nonsense", "-o", str(tmp_path / "o")])
    assert "not a scikit-learn scorer" in capsys.readouterr().err


@pytest.mark.slow
def test_water_chip_ranks_nir_and_swir_above_cirrus_and_water_vapour(
    tmp_path: Path, data_dir: Path
) -> None:
    image = data_dir / S2 / "Spain_7370579_S2Hand.tif"
    label_path = data_dir / S2 / "Spain_7370579_LabelHand.tif"
    scene = open_scene(image)
    labels = read_labels(label_path, Grid.of(scene), unlabelled=-1)
    result = train(scene, labels, per_class_cap=5000, epochs=40, seed=0)
    model_dir = save_model(result.model, tmp_path / "water-model")
    out = tmp_path / "explain"
    main(
        [
            "explain",
            "-m",
            str(model_dir),
            str(image),
            "--labels",
            str(label_path),
            "--unlabelled",
            "-1",
            "--per-class-cap",
            "3000",
            "--repeats",
            "3",
            "-q",
            "-o",
            str(out),
        ]
    )
    ranking = json.loads((out / "explanation.json").read_text())["ranking"]
    # The model names its bands canonically: the file's B8 is B08.
    nir_swir = [ranking.index(band) for band in ("B08", "B8A", "B11", "B12")]
    cirrus_vapour = [ranking.index(band) for band in ("B09", "B10")]
    assert max(nir_swir) < min(cirrus_vapour), ranking
    # The explained classifier is the saved model itself: same classes on the same pixels.
    window = scene.isel(y=slice(0, 64), x=slice(0, 64))
    pixels = window.values.reshape(13, -1).T.astype(np.float32)
    wrapped = SpectralFusionClassifier.from_model(result.model)
    mapped = predict_scene(window, result.model, device="cpu").values.ravel()
    np.testing.assert_array_equal(wrapped.predict(pixels), mapped)
