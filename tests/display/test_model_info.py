"""The model summary `bandfusion info MODEL` prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from bandfusion.display.model_info import describe_model
from bandfusion.models import load_model, save_model

from tests.models.test_checkpoint import make_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return save_model(make_model(), tmp_path / "model")


def test_describe_summarises_the_model(model_dir: Path) -> None:
    text = describe_model(load_model(model_dir))
    for fragment in [
        "bands (4): B02, B03, B04, B08",
        "    255  unknown  #808080",
        "      8  cloud  #ffffff",
        "architecture: 4 -> 8 -> 4 -> 4 (norm=batch, activation=relu, dropout=0)",
        f"parameters: {sum(p.numel() for p in make_model().net.parameters()):,}",
        f"FLOPs per pixel: {2 * (4 * 8 + 8 * 4 + 4 * 4)}",
        "overall_accuracy: 0.9375",
        'per_class_f1: {"water": 0.9}',
    ]:
        assert fragment in text


def test_a_clamped_model_says_so() -> None:
    text = describe_model(make_model(clamped=True))
    assert "dropout=0, each band clamped to its training range)" in text


def test_a_searched_model_says_what_it_chose_and_blended() -> None:
    model = make_model()
    assert "chosen by" not in describe_model(model)
    model.meta.training["selection"] = {
        "chosen": "given",
        "protocol": "stratified",
        "folds": 3,
        "cv_macro_f1": {"given": 0.9, "binned": 0.8},
        "blended": ["given", "binned"],
    }
    text = describe_model(model)
    assert "settings chosen by 3-fold CV (stratified), macro-F1:" in text
    assert "the model averages the networks of given and binned" in text
