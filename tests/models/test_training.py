"""The training loop (bandfusion.models.training): seeded runs repeat exactly, early stopping
keeps the best epoch's weights and stops `patience` epochs after it, the network standardises
on the training pixels, and the epoch score is scikit-learn's macro-F1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from bandfusion.errors import SettingError
from bandfusion.models.training import (
    PATIENCE_EPOCH_STEPS,
    SCORED_TRAINING_PIXELS,
    FitSettings,
    check_network_fits,
    fit_pixels,
    macro_f1,
    predict_logits,
    stratified_sample,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import f1_score

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = FitSettings(hidden=(8,), epochs=6, batch_size=64, patience=100)


def pixels(n: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` pixels of 5 bands around three class centres (water, vegetation, bare soil) with
    Gaussian noise of `spread`: small spreads give separable classes, large ones overlap."""
    rng = np.random.default_rng(seed)
    centres = np.array(
        [[900, 700, 400, 200, 100], [500, 900, 600, 3000, 1500], [1400, 1600, 1800, 2200, 2600]]
    )
    y = rng.integers(0, 3, n)
    return (centres[y] + rng.normal(0, spread, (n, 5))).astype(np.float32), y


def weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in net.state_dict().items()}


def test_the_same_seed_gives_the_same_network_and_history() -> None:
    x, y = pixels(300, 400.0)
    first = fit_pixels(x, y, n_classes=3, settings=QUICK)
    again = fit_pixels(x, y, n_classes=3, settings=QUICK)
    assert first.history == again.history
    for name, value in weights(first.net).items():
        torch.testing.assert_close(again.net.state_dict()[name], value, rtol=0, atol=0)
    other = fit_pixels(x, y, n_classes=3, settings=FitSettings(**{**vars(QUICK), "seed": 1}))
    pairs = zip(other.net.parameters(), first.net.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize(("batch_size", "stale_epochs"), [(16, 3), (64, 10)])
def test_training_stops_patience_epochs_after_the_best_one(
    batch_size: int, stale_epochs: int
) -> None:
    """Epochs of 19 batches count whole; epochs of 5 batches count 5/16 of an epoch each, so
    a patience of 3 takes ceil(3 · 16 / 5) = 10 of them."""
    x, y = pixels(300, 50.0)  # separable: the score stops improving early
    settings = FitSettings(hidden=(8,), epochs=100, batch_size=batch_size, patience=3)
    assert math.ceil(300 / batch_size) == (19 if batch_size == 16 else 5)
    result = fit_pixels(x, y, n_classes=3, settings=settings)
    scores = [epoch["val_macro_f1"] for epoch in result.history]
    best = scores.index(max(scores))
    assert len(scores) == best + 1 + stale_epochs < settings.epochs
    assert PATIENCE_EPOCH_STEPS == 16
    assert [epoch["epoch"] for epoch in result.history] == list(range(1, len(scores) + 1))


def test_the_best_epochs_weights_are_kept() -> None:
    x, y = pixels(400, 700.0, seed=1)
    x_val, y_val = pixels(200, 700.0, seed=2)
    # A seed whose last epoch is not its best (seeds 1-4 are such, 0 and 5 not), so that
    # the weights kept cannot simply be the last epoch's.
    settings = FitSettings(**{**vars(QUICK), "epochs": 12, "seed": 1})
    result = fit_pixels(x, y, n_classes=3, x_val=x_val, y_val=y_val, settings=settings)
    scores = [epoch["val_macro_f1"] for epoch in result.history]
    assert scores[-1] < max(scores)
    predicted = predict_logits(result.net, x_val).argmax(1).numpy()
    assert f1_score(y_val, predicted, average="macro", zero_division=0) == pytest.approx(
        max(scores), rel=1e-12
    )
    assert not result.net.training and next(result.net.parameters()).device.type == "cpu"


def test_without_validation_pixels_each_epoch_is_scored_on_the_training_pixels() -> None:
    x, y = pixels(300, 400.0)
    alone = fit_pixels(x, y, n_classes=3, settings=QUICK)
    scored_on_itself = fit_pixels(x, y, n_classes=3, x_val=x, y_val=y, settings=QUICK)
    empty = fit_pixels(x, y, n_classes=3, x_val=x[:0], y_val=y[:0], settings=QUICK)
    assert alone.history == scored_on_itself.history == empty.history


def test_a_large_table_scores_its_epochs_on_a_stratified_sample_of_itself() -> None:
    x, y = pixels(SCORED_TRAINING_PIXELS + 1500, 400.0)
    settings = FitSettings(**{**vars(QUICK), "epochs": 1})
    result = fit_pixels(x, y, n_classes=3, settings=settings)
    rows = stratified_sample(y, np.arange(len(y)), SCORED_TRAINING_PIXELS, np.random.default_rng(0))
    assert abs(len(rows) - SCORED_TRAINING_PIXELS) <= 3  # each class rounded
    predicted = predict_logits(result.net, x[rows]).argmax(1).numpy()
    assert result.history[0]["val_macro_f1"] == macro_f1(y[rows], predicted, 3)


@settings(max_examples=100, deadline=None)
@given(
    labels=hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(0, 4)),
    cap=st.integers(1, 400),
    seed=st.integers(0, 100),
)
def test_a_stratified_sample_keeps_every_class_in_proportion(
    labels: np.ndarray, cap: int, seed: int
) -> None:
    rows = np.flatnonzero(labels >= 0)[::-1].copy()
    sample = stratified_sample(labels, rows, cap, np.random.default_rng(seed))
    if len(rows) <= cap:
        assert sample is rows
        return
    assert np.all(np.diff(sample) > 0) and np.isin(sample, rows).all()
    for k in np.unique(labels):
        share = cap * np.mean(labels == k)
        assert max(1, np.floor(share)) <= np.sum(labels[sample] == k) <= max(1, np.ceil(share))


@settings(max_examples=200, deadline=None)
@given(n_classes=st.integers(1, 6), weighted=st.booleans(), data=st.data())
def test_the_epoch_score_is_scikit_learns_macro_f1(
    n_classes: int, weighted: bool, data: st.DataObject
) -> None:
    """Unweighted, or with each pixel counted by its class weight (f1_score's sample_weight)."""
    labels = hnp.arrays(np.int64, st.integers(1, 60), elements=st.integers(0, n_classes - 1))
    truth = data.draw(labels)
    predicted = data.draw(hnp.arrays(np.int64, len(truth), elements=st.integers(0, n_classes - 1)))
    weight = st.floats(0.01, 100.0)
    weights = data.draw(hnp.arrays(np.float64, n_classes, elements=weight)) if weighted else None
    expected = f1_score(
        truth,
        predicted,
        average="macro",
        zero_division=0,
        sample_weight=None if weights is None else weights[truth],
    )
    assert macro_f1(truth, predicted, n_classes, weights) == pytest.approx(
        expected, rel=1e-9, abs=1e-12
    )


def test_the_network_standardises_on_the_training_pixels() -> None:
    x, y = pixels(300, 400.0)
    net = fit_pixels(x, y, n_classes=3, settings=QUICK).net
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(net.band_mean.numpy(), x64.mean(0), rtol=1e-6)
    np.testing.assert_allclose(net.band_std.numpy(), x64.std(0), rtol=1e-6)


def test_logits_agree_whatever_the_batch_size() -> None:
    """Up to float32 rounding: the matrix products of other batch shapes round differently."""
    x, y = pixels(300, 400.0)
    net = fit_pixels(x, y, n_classes=3, settings=QUICK).net
    whole = predict_logits(net, x)
    assert whole.shape == (300, 3) and whole.dtype == torch.float32
    torch.testing.assert_close(predict_logits(net, x, batch_pixels=7), whole)
    assert predict_logits(net, x[:0]).shape == (0, 3)


@pytest.mark.parametrize(
    ("hidden", "problem"),
    [((1_000_000_000,), "a model file may hold"), ((20_000,), "budget")],
    ids=["weights over the file limit", "activations over the budget"],
)
def test_a_network_over_the_memory_budget_is_refused_before_it_is_built(
    hidden: tuple[int, ...], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was built")

    monkeypatch.setattr("bandfusion.models.training.SpectralFusionNet", never)
    x, y = pixels(100, 400.0)
    with pytest.raises(SettingError, match=problem) as caught:
        fit_pixels(x, y, n_classes=3, settings=FitSettings(hidden=hidden, epochs=1))
    assert caught.value.setting == "hidden"


def test_the_default_network_fits_the_budget() -> None:
    check_network_fits(400, 255, FitSettings(hidden=(512, 512), batch_size=65536))


@pytest.mark.parametrize("rate", [1e30, float("inf")])
def test_a_diverging_run_stops_with_one_line(rate: float) -> None:
    x, y = pixels(300, 400.0)
    with pytest.raises(SettingError, match="diverged in epoch 1") as caught:
        fit_pixels(
            x, y, n_classes=3, settings=FitSettings(**{**vars(QUICK), "learning_rate": rate})
        )
    assert caught.value.setting == "learning_rate"
    assert "\n" not in str(caught.value)
