"""Binned bands: the trained form and the saved plain network compute the same function, and
the saved network goes through everything a SpectralFusionNet goes through. A clip sets the
bins' outer edges, or (without bins) the range a network clamps each band to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bandfusion.errors import SettingError
from bandfusion.models.checkpoint import TrainedModel, load_model, save_model
from bandfusion.models.embedding import BinnedFusionNet, quantile_bins
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.inference import TorchKernel
from bandfusion.models.metadata import ModelMetadata
from bandfusion.models.training import FitSettings, check_network_fits, fit_pixels
from hypothesis import given, settings
from hypothesis import strategies as st


def _pixels(rows: int, seed: int) -> np.ndarray:
    """Bands of very different scales, one of integers with ties, one constant."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5)) * [1.0, 10.0, 100.0, 1000.0, 0.1] + 5.0
    x[:, 1] = np.round(x[:, 1])
    x[:, 4] = 3.0
    return x.astype(np.float32)


def _trained_form(
    x: np.ndarray, bins: int, clip: float = 0.0, **options: object
) -> BinnedFusionNet:
    """A binned net whose batch norms hold statistics other than their initial ones."""
    net = BinnedFusionNet(x, 3, bins, clip, **options)  # type: ignore[arg-type]
    net.train()
    with torch.no_grad():
        for start in range(0, len(x), 256):
            net.member_logits(torch.from_numpy(x[start : start + 256]) * 1.1)
    return net.eval()


@settings(max_examples=25, deadline=None)
@given(
    bins=st.integers(1, 12),
    clip=st.sampled_from([0.0, 0.01, 0.2]),
    hidden=st.sampled_from([(), (8,), (8, 4)]),
    members=st.integers(1, 3),
    norm=st.sampled_from(["batch", "none"]),
    seed=st.integers(0, 2**16),
)
def test_the_saved_network_computes_the_trained_one(
    bins: int, clip: float, hidden: tuple[int, ...], members: int, norm: str, seed: int
) -> None:
    x = _pixels(600, seed)
    torch.manual_seed(seed)
    trained = _trained_form(x, bins, clip, hidden=hidden, members=members, norm=norm)
    saved = trained.export()
    # Inside the training range and far outside it (where every bin saturates).
    table = torch.from_numpy(np.concatenate([x, 3 * x - 40, -x]))
    with torch.no_grad():
        expected, got = trained(table), saved(table)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    edges_per_band = [int((trained.band == b).sum()) + 1 for b in range(x.shape[1])]
    assert saved.hidden == (sum(edges_per_band), *hidden)
    assert saved.members == members


def test_the_saved_network_loads_and_folds_like_any_other(tmp_path: Path) -> None:
    x = _pixels(2000, 0)
    y = (x[:, 0] > 5).astype(np.int64) + (x[:, 2] > 100)
    net = fit_pixels(x, y, n_classes=3, settings=FitSettings(bins=8, epochs=3)).net
    meta = ModelMetadata(
        bands=[f"b{i}" for i in range(5)],
        class_ids=[0, 1, 2],
        class_names=["a", "b", "c"],
        class_colors=[(0, 0, 0), (1, 1, 1), (2, 2, 2)],
        architecture=net.config(),
        training={"bins": 8},
    )
    loaded = load_model(save_model(TrainedModel(net, meta), tmp_path / "model")).net
    table = torch.from_numpy(x)
    with torch.no_grad():
        expected = net(table)
    torch.testing.assert_close(loaded(table), expected)
    kernel = TorchKernel.from_net(loaded, sub_batch=700)
    torch.testing.assert_close(kernel.logits(table), expected, rtol=1e-4, atol=1e-4)


def test_bins_are_quantiles_of_each_band_and_a_constant_band_keeps_one() -> None:
    x = _pixels(5000, 1)
    standard = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    band, low, width = quantile_bins(standard.astype(np.float64), 8)
    assert (width > 0).all()
    for b in range(4):
        mine = band == b
        assert 1 <= mine.sum() <= 8
        assert np.all(np.diff(low[mine]) > 0)
        assert low[mine][0] == pytest.approx(standard[:, b].min())
        assert (low + width)[mine][-1] == pytest.approx(standard[:, b].max())
    assert (band == 4).sum() == 1 and width[band == 4][0] == 1.0
    # Quartiles of a continuous band hold a quarter of the pixels each.
    quarters = quantile_bins(standard[:, :1].astype(np.float64), 4)
    counts = np.histogram(standard[:, 0], np.append(quarters[1], quarters[1][-1] + quarters[2][-1]))
    np.testing.assert_allclose(counts[0] / len(x), 0.25, atol=0.01)


def test_a_clip_saturates_each_band_at_its_quantiles() -> None:
    x = _pixels(5000, 3)
    standard = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    band, low, width = quantile_bins(standard.astype(np.float64), 1, clip=0.05)
    np.testing.assert_array_equal(band, np.arange(5))  # one bin a band
    for b in range(4):
        inside = (standard[:, b] >= low[b]) & (standard[:, b] <= low[b] + width[b])
        assert inside.mean() == pytest.approx(0.9, abs=0.01)
    # The trained form: a band's outliers change nothing past its edges.
    torch.manual_seed(0)
    net = _trained_form(x, 1, 0.05, hidden=(8,))
    outlying = torch.from_numpy(x[:50].copy())
    outlying[:, 0] = float(x[:, 0].max())
    further = outlying.clone()
    further[:, 0] = 1e6
    with torch.no_grad():
        torch.testing.assert_close(net(further), net(outlying))


def test_a_clip_without_bins_trains_a_clamped_network_at_the_quantiles() -> None:
    x = _pixels(4000, 5)
    y = (x[:, 0] > 5).astype(np.int64)
    settings = FitSettings(clip=0.05, hidden=(8,), epochs=2, norm="layer", activation="gelu")
    net = fit_pixels(x, y, n_classes=2, settings=settings).net
    assert net.clamped and net.hidden == (8,)  # no encoding layer, and any norm or activation
    standard = (torch.from_numpy(x) - net.band_mean) / net.band_std
    inside = (standard >= net.band_low) & (standard <= net.band_high)
    np.testing.assert_allclose(inside[:, :4].float().mean(0), 0.9, atol=0.01)
    assert bool(inside[:, 4].all())  # the constant band: its one value, within its range


@pytest.mark.parametrize(
    ("bins", "options", "message"),
    [
        (0, {}, "bins must be a positive integer"),
        (True, {}, "bins must be a positive integer"),
        (4, {"activation": "gelu"}, "activation 'relu'"),
        (4, {"norm": "layer"}, "norm 'batch' or 'none'"),
        (1, {"clip": 0.5}, r"clip must be a share in \[0, 0.5\)"),
        (1, {"clip": -0.1}, r"clip must be a share"),
    ],
)
def test_settings_that_cannot_carry_bins_are_refused(
    bins: object, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BinnedFusionNet(_pixels(50, 0), 2, bins, **options)  # type: ignore[arg-type]


def test_the_memory_check_counts_the_encoding() -> None:
    check_network_fits(13, 5, FitSettings(bins=16))
    with pytest.raises(SettingError, match=r"^bins=100000: a network of") as caught:
        check_network_fits(200, 5, FitSettings(bins=100_000))
    assert caught.value.setting == "bins"
    with pytest.raises(SettingError) as caught:  # layers too wide with or without bins
        check_network_fits(200, 5, FitSettings(hidden=(10**9,), bins=4))
    assert caught.value.setting == "hidden"


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"bins": 4, "norm": "layer"}, "norm"),
        ({"bins": 4, "activation": "gelu"}, "activation"),
        ({"members": 3, "norm": "layer"}, "norm"),
    ],
)
def test_settings_that_cannot_build_a_network_together_are_one_setting_error(
    overrides: dict[str, object], setting: str
) -> None:
    x = _pixels(100, 0)
    with pytest.raises(SettingError) as caught:
        fit_pixels(
            x, (x[:, 0] > 5).astype(np.int64), n_classes=2, settings=FitSettings(**overrides)
        )  # type: ignore[arg-type]
    assert caught.value.setting == setting


def test_a_binned_estimator_saves_and_its_clone_refits_the_same_architecture(
    tmp_path: Path,
) -> None:
    x = _pixels(1500, 2)
    y = np.where(x[:, 2] > 100, 7, 3)
    estimator = SpectralFusionClassifier(bins=6, epochs=5, search=False).fit(x, y)
    assert estimator.score(x, y) > 0.9  # one threshold on one band: what bins draw at once
    loaded = SpectralFusionClassifier.load(estimator.save(tmp_path / "model"))
    assert loaded.bins == 6 and loaded.hidden == estimator.hidden
    np.testing.assert_array_equal(loaded.predict(x), estimator.predict(x))
    refit = SpectralFusionClassifier(**loaded.get_params()).fit(x, y)
    assert refit.net_.hidden == estimator.net_.hidden
