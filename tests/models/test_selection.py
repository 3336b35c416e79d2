"""Settings chosen by cross-validation inside the training pixels: every candidate is scored,
the best is kept, folds respect spatial blocks, and data too small to fold keeps the given."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from bandfusion.models.selection import CANDIDATES, blend_problem, select_settings
from bandfusion.models.training import FitSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = FitSettings(hidden=(8,), epochs=4, batch_size=64, patience=100)


def pixels(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return (y[:, None] * 300.0 + rng.normal(0, 200, (n, 4))).astype(np.float32), y


def no_weights(_y: np.ndarray) -> None:
    return None


def test_every_candidate_is_scored_and_the_best_is_chosen() -> None:
    x, y = pixels()
    selection = select_settings(x, y, n_classes=3, settings=QUICK, class_weights=no_weights)
    assert selection.protocol == "stratified"
    assert set(selection.scores) == set(CANDIDATES)
    assert selection.scores[selection.chosen] == max(selection.scores.values())
    chosen = CANDIDATES[selection.chosen]
    assert all(getattr(selection.settings, key) == value for key, value in chosen.items())
    assert selection.settings.epochs == QUICK.epochs  # what no candidate changes stays given
    again = select_settings(x, y, n_classes=3, settings=QUICK, class_weights=no_weights)
    assert again == selection
    record = selection.to_dict()
    assert record["chosen"] == selection.chosen and record["folds"] == 3


def test_spatial_blocks_stay_whole_within_a_fold() -> None:
    x, y = pixels()
    blocks = np.arange(len(y)) // 10
    seen: list[np.ndarray] = []

    def record_fold(y_train: np.ndarray) -> None:
        seen.append(y_train)

    selection = select_settings(
        x, y, n_classes=3, settings=QUICK, class_weights=record_fold, groups=blocks
    )
    assert selection.protocol == "spatial blocks"
    assert len(seen) == 3  # one draw of class weights per fold, shared by the candidates


@pytest.mark.parametrize(
    ("y", "groups"),
    [
        (np.array([0, 0, 0, 1, 1] * 4 + [2, 2]), None),
        (np.array([0, 0, 0, 1, 1] * 4 + [2, 2]), np.arange(22) // 2),
    ],
)
def test_data_that_cannot_be_folded_keeps_the_given_settings(
    y: np.ndarray, groups: np.ndarray | None
) -> None:
    x = np.random.default_rng(0).normal(size=(len(y), 4)).astype(np.float32)
    selection = select_settings(
        x, y, n_classes=3, settings=QUICK, class_weights=no_weights, groups=groups
    )
    assert selection.chosen == "given" and selection.settings == QUICK
    assert selection.protocol == "skipped: a class has fewer than 3 pixels"
    assert not selection.scores


@pytest.mark.parametrize(
    ("y", "groups", "why"),
    [
        (np.array([0, 1, 2] * 8), np.arange(24) // 12, "fewer than 3 spatial blocks"),
        (np.array([0, 1] * 12 + [2] * 3), np.r_[np.arange(24) // 4, [9, 9, 9]], "one block"),
    ],
)
def test_blocks_that_cannot_hold_every_class_give_way_to_stratified_folds(
    y: np.ndarray, groups: np.ndarray, why: str
) -> None:
    seen: list[np.ndarray] = []

    def record_fold(y_train: np.ndarray) -> None:
        seen.append(y_train)

    x = np.random.default_rng(0).normal(size=(len(y), 4)).astype(np.float32)
    selection = select_settings(
        x, y, n_classes=3, settings=QUICK, class_weights=record_fold, groups=groups
    )
    assert selection.protocol.startswith("stratified (") and why in selection.protocol
    assert set(selection.scores) == set(CANDIDATES)
    assert all(set(fold) == {0, 1, 2} for fold in seen)  # every class trains in every fold


@pytest.mark.parametrize(
    ("given", "left_out"),
    [({"norm": "layer"}, {"ensemble", "binned"}), ({"activation": "gelu"}, {"binned"})],
)
def test_candidates_the_given_settings_cannot_carry_are_left_out(
    given: dict[str, str], left_out: set[str]
) -> None:
    """An ensemble or binned bands under a layer norm, binned bands with GELU: `train
    --norm layer` crashed in the ensemble candidate before."""
    x, y = pixels()
    settings = FitSettings(**{**vars(QUICK), **given})  # type: ignore[arg-type]
    selection = select_settings(x, y, n_classes=3, settings=settings, class_weights=no_weights)
    assert set(selection.scores) == set(CANDIDATES) - left_out
    assert selection.settings.norm == settings.norm
    assert selection.settings.activation == settings.activation


def test_a_blend_takes_the_best_candidates_in_order() -> None:
    x, y = pixels()
    selection = select_settings(
        x, y, n_classes=3, settings=QUICK, class_weights=no_weights, blend=2
    )
    ranked = sorted(selection.scores, key=lambda name: -selection.scores[name])
    assert selection.blended == tuple(ranked[:2]) and selection.chosen == ranked[0]
    assert selection.members() == [replace(QUICK, **CANDIDATES[name]) for name in selection.blended]
    assert selection.to_dict()["blended"] == ranked[:2]
    alone = select_settings(x, y, n_classes=3, settings=QUICK, class_weights=no_weights)
    assert alone.members() == [alone.settings] and "blended" not in alone.to_dict()
    assert alone.scores == selection.scores  # blending changes what is fitted, not the search


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([QUICK], "fewer than two"),
        ([QUICK, replace(QUICK, norm="layer")], "layer norm"),
        ([QUICK, replace(QUICK, clip=0.01)], "clipped"),
        ([replace(QUICK, activation="gelu"), replace(QUICK, bins=4)], "ReLU identity"),
    ],
)
def test_settings_that_cannot_be_averaged_are_named(members: list[FitSettings], why: str) -> None:
    problem = blend_problem(members)
    assert problem is not None and why in problem
    assert blend_problem([QUICK, replace(QUICK, bins=4, hidden=(4, 4))]) is None


def test_a_blend_the_settings_cannot_carry_fits_the_best_alone_and_says_why() -> None:
    x, y = pixels()
    layer = replace(QUICK, norm="layer")
    selection = select_settings(
        x, y, n_classes=3, settings=layer, class_weights=no_weights, blend=2
    )
    assert selection.members() == [selection.settings] and not selection.blended
    assert "layer norm" in selection.to_dict()["unblended"]
