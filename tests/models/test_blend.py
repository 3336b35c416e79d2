"""Blends: networks of any depths, widths, members, norms and standardisations averaged as one
plain network compute the mean of their logits; what cannot be averaged is refused; a blended
fit is the average of the fits it is made of, through every path a network goes through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bandfusion.models.blend import average_nets, fit_blend
from bandfusion.models.checkpoint import TrainedModel, load_model, save_model
from bandfusion.models.inference import TorchKernel
from bandfusion.models.metadata import ModelMetadata
from bandfusion.models.training import FitSettings, fit_pixels
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.nets import make_net

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = st.fixed_dictionaries(
    {
        "hidden": st.lists(st.integers(1, 12), max_size=3).map(tuple),
        "norm": st.sampled_from(["batch", "none"]),
        "members": st.integers(1, 3),
    }
)


@settings(max_examples=40, deadline=None)
@given(archs=st.lists(ARCH, min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_a_blend_computes_the_mean_of_its_networks_logits(
    archs: list[dict[str, object]], seed: int
) -> None:
    nets = [make_net(seed=seed + i, **arch) for i, arch in enumerate(archs)]  # own means, stds
    blend = average_nets(nets)
    assert blend.norm == "none" and blend.members == 1
    table = torch.randn(300, 6, generator=torch.Generator().manual_seed(seed)) * 40 + 50
    with torch.no_grad():
        expected = torch.stack([net(table).double() for net in nets]).mean(0)
        blended = blend(table).double()
    scale = float(expected.abs().max()) + 1.0
    assert float((blended - expected).abs().max()) <= 1e-5 * scale


def test_what_cannot_be_averaged_is_refused() -> None:
    plain = make_net(hidden=(8,))
    with pytest.raises(ValueError, match="same bands to the same classes"):
        average_nets([plain, make_net(in_bands=5, hidden=(8,))])
    with pytest.raises(ValueError, match="one activation"):
        average_nets([plain, make_net(hidden=(8,), activation="gelu")])
    with pytest.raises(ValueError, match="layer norm or clamped"):
        average_nets([plain, make_net(hidden=(8,), norm="layer")])
    with pytest.raises(ValueError, match="layer norm or clamped"):
        average_nets([plain, make_net(hidden=(8,), clamped=True)])
    gelu = {"activation": "gelu", "norm": "none"}
    with pytest.raises(ValueError, match="ReLU identity layers only"):
        average_nets([make_net(hidden=(8,), **gelu), make_net(hidden=(8, 8), **gelu)])
    same_depth = average_nets([make_net(hidden=(8,), **gelu), make_net(hidden=(4,), **gelu)])
    assert same_depth.hidden == (12,)


def _pixels(rows: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(rows) % 3
    x = y[:, None] * [300.0, -50.0, 20.0, 0.0] + rng.normal(0, 200, (rows, 4)) + 1000
    return x.astype(np.float32), y


QUICK = FitSettings(hidden=(8, 8), epochs=6, batch_size=64, patience=100, dropout=0.2)
BINNED = FitSettings(hidden=(8,), epochs=6, batch_size=64, patience=100, bins=4, dropout=0.5)


def test_a_blended_fit_is_the_average_of_its_members_fitted_alone(tmp_path: Path) -> None:
    x, y = _pixels()
    blended = fit_blend(x, y, n_classes=3, members=[QUICK, BINNED])
    alone = [fit_pixels(x, y, n_classes=3, settings=s).net for s in (QUICK, BINNED)]
    table = torch.from_numpy(x)
    expected = torch.stack([net(table) for net in alone]).mean(0)
    torch.testing.assert_close(blended.net(table), expected, rtol=1e-5, atol=1e-5)
    assert blended.history == fit_pixels(x, y, n_classes=3, settings=QUICK).history
    single = fit_blend(x, y, n_classes=3, members=[QUICK])  # one member: a plain fit
    torch.testing.assert_close(single.net(table), alone[0](table), rtol=0, atol=0)

    meta = ModelMetadata(
        bands=["a", "b", "c", "d"],
        class_ids=[0, 1, 2],
        class_names=["x", "y", "z"],
        class_colors=[(0, 0, 0)] * 3,
        architecture=blended.net.config(),
    )
    loaded = load_model(save_model(TrainedModel(blended.net, meta), tmp_path / "m")).net
    kernel = TorchKernel.from_net(loaded)
    torch.testing.assert_close(kernel.logits(table), expected, rtol=1e-4, atol=1e-4)
