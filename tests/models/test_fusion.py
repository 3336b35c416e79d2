"""SpectralFusionNet: shapes, GEMM == 1x1 convolution, standardisation, modes, config."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from bandfusion.models import SpectralFusionNet
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.nets import ARCHS, make_net


def as_table(tiles: torch.Tensor) -> torch.Tensor:
    return tiles.permute(0, 2, 3, 1).reshape(-1, tiles.shape[1])


def assert_table_equals_tiles(net: SpectralFusionNet, tiles: torch.Tensor) -> None:
    n, _, h, w = tiles.shape
    with torch.no_grad():
        from_tiles = net(tiles)
        from_table = net(as_table(tiles))
    assert from_tiles.shape == (n, net.n_classes, h, w)
    assert from_table.shape == (n * h * w, net.n_classes)
    assert torch.equal(from_tiles, from_table.reshape(n, h, w, -1).permute(0, 3, 1, 2))


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_table_and_tiles_give_bit_identical_logits(arch: dict[str, object]) -> None:
    net = make_net(**arch)
    assert_table_equals_tiles(net, torch.randn(3, 6, 7, 5) * 10 + 50)


@settings(max_examples=40, deadline=None)
@given(
    in_bands=st.integers(1, 12),
    n_classes=st.integers(1, 7),
    hidden=st.lists(st.integers(1, 40), max_size=3),
    norm=st.sampled_from(["batch", "layer", "none"]),
    activation=st.sampled_from(["relu", "gelu"]),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
    seed=st.integers(0, 2**16),
)
def test_table_and_tiles_agree_for_any_architecture(
    in_bands: int,
    n_classes: int,
    hidden: list[int],
    norm: str,
    activation: str,
    shape: tuple[int, int, int],
    seed: int,
) -> None:
    net = make_net(in_bands, n_classes, seed, hidden=hidden, norm=norm, activation=activation)
    n, h, w = shape
    assert_table_equals_tiles(
        net, torch.randn(n, in_bands, h, w, generator=torch.Generator().manual_seed(seed))
    )


def conv_reference(net: SpectralFusionNet, tiles: torch.Tensor) -> torch.Tensor:
    """The same network written with Conv2d and 2-D batch norm, for eval mode."""
    x = (tiles - net.band_mean[:, None, None]) / net.band_std[:, None, None]
    convs = list(net.convs)
    for conv, norm in zip(convs[:-1], net.norms, strict=True):
        x = F.batch_norm(
            conv(x), norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=norm.eps
        )
        x = F.relu(x)
    return convs[-1](x)


def test_gemm_matches_a_conv2d_stack() -> None:
    net = make_net(hidden=(32, 8, 32))
    tiles = torch.randn(2, 6, 5, 4) * 10 + 50
    with torch.no_grad():
        torch.testing.assert_close(net(tiles), conv_reference(net, tiles), rtol=1e-5, atol=1e-5)


def test_standardisation_is_applied_inside_the_model() -> None:
    mean, std = torch.tensor([100.0, -5.0, 0.0]), torch.tensor([10.0, 0.5, 2.0])
    net = make_net(3, 2, hidden=(5,))
    plain = SpectralFusionNet.from_config(net.config())
    plain.load_state_dict(net.state_dict())
    plain.set_standardisation(torch.zeros(3), torch.ones(3))
    net.set_standardisation(mean, std)
    plain.eval()
    x = torch.randn(50, 3) * std + mean
    with torch.no_grad():
        torch.testing.assert_close(net(x), plain((x - mean) / std))
    assert net.band_mean.dtype == torch.float32
    assert torch.equal(net.band_std, std)


def test_constant_bands_do_not_divide_by_zero() -> None:
    net = SpectralFusionNet(3, 2, hidden=())
    net.set_standardisation([1.0, 2.0, 3.0], [0.0, 1e-9, 4.0])
    assert net.band_std.tolist() == [1.0, 1.0, 4.0]
    assert torch.isfinite(net(torch.full((4, 3), 7.0))).all()


@pytest.mark.parametrize(
    ("mean", "std"),
    [([0.0, 0.0], [1.0, 1.0, 1.0]), ([0.0, float("nan"), 0.0], [1.0, 1.0, 1.0])],
)
def test_bad_standardisation_is_refused(mean: Sequence[float], std: Sequence[float]) -> None:
    with pytest.raises(ValueError, match="band mean"):
        SpectralFusionNet(3, 2).set_standardisation(mean, std)


def test_batch_norm_uses_batch_statistics_in_training_only() -> None:
    net = make_net(hidden=(8,))
    x = torch.randn(200, 6) * 10 + 50
    running = net.norms[0].running_mean.clone()
    with torch.no_grad():
        evaluated = net(x)
        assert torch.equal(net.norms[0].running_mean, running)
        # In eval mode every pixel is classified on its own: a subset gives the same logits.
        torch.testing.assert_close(net(x[:7]), evaluated[:7])
        net.train()
        trained = net(x)
    assert not torch.equal(net.norms[0].running_mean, running)
    assert not torch.allclose(trained, evaluated)


def test_dropout_is_active_in_training_only() -> None:
    net = make_net(hidden=(64,), norm="none", dropout=0.5)
    x = torch.randn(100, 6)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
        net.train()
        assert not torch.equal(net(x), net(x))


@pytest.mark.parametrize(
    ("shape", "message"),
    [((10, 5), "5 bands"), ((2, 7, 3, 3), "7 bands"), ((6,), "shape"), ((1, 6, 2), "shape")],
)
def test_wrong_input_shape_raises(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpectralFusionNet(6, 3)(torch.zeros(shape))


def test_integer_input_raises() -> None:
    with pytest.raises(ValueError, match="floating-point"):
        SpectralFusionNet(2, 3)(torch.zeros((4, 2), dtype=torch.int64))


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_config_round_trip_rebuilds_an_identical_model(arch: dict[str, object]) -> None:
    net = make_net(**arch)
    cfg = json.loads(json.dumps(net.config()))
    rebuilt = SpectralFusionNet.from_config(cfg)
    rebuilt.load_state_dict(net.state_dict())
    rebuilt.eval()
    assert rebuilt.config() == net.config()
    x = torch.randn(30, 6) * 10 + 50
    with torch.no_grad():
        assert torch.equal(rebuilt(x), net(x))


@pytest.mark.parametrize(
    "cfg_change",
    [
        {"in_bands": 0},
        {"n_classes": True},
        {"hidden": [4, 0]},
        {"hidden": 4},
        {"norm": "group"},
        {"activation": "tanh"},
        {"dropout": 1.0},
        {"dropout": float("nan")},
        {"depth": 3},
    ],
    ids=str,
)
def test_invalid_config_raises_value_error(cfg_change: dict[str, object]) -> None:
    cfg = {**SpectralFusionNet(3, 2).config(), **cfg_change}
    with pytest.raises(ValueError):
        SpectralFusionNet.from_config(cfg)


def test_missing_config_key_raises_value_error() -> None:
    cfg = SpectralFusionNet(3, 2).config()
    del cfg["norm"]
    with pytest.raises(ValueError, match="norm"):
        SpectralFusionNet.from_config(cfg)


@pytest.mark.parametrize(("hidden", "rows"), [((16, 4), 16), ((), 3)])
def test_first_layer_weights_are_the_band_mixing_matrix(hidden: tuple[int, ...], rows: int) -> None:
    net = SpectralFusionNet(5, 3, hidden=hidden)
    weights = net.first_layer_weights()
    assert weights.shape == (rows, 5)
    assert torch.equal(weights, net.convs[0].weight[:, :, 0, 0])
    weights += 1  # a copy: changing it leaves the model alone
    assert not torch.equal(weights, net.convs[0].weight[:, :, 0, 0])


def test_size_accounting() -> None:
    net = SpectralFusionNet(13, 5, hidden=(128, 32, 128))
    assert net.widths() == [13, 128, 32, 128, 5]
    assert net.flops_per_pixel() == 2 * (13 * 128 + 128 * 32 + 32 * 128 + 128 * 5)


def test_empty_inputs_give_empty_logits() -> None:
    net = make_net()
    assert net(torch.zeros(0, 6)).shape == (0, 4)
    assert net(torch.zeros(2, 6, 0, 3)).shape == (2, 4, 0, 3)


def test_a_clamped_net_saturates_each_band_past_its_range() -> None:
    net = make_net(hidden=(8,), clamped=True)
    std = net.band_std
    inside = net.band_mean + 0.25 * std  # well inside every band's range
    edge = net.band_mean + net.band_high * std
    pixels = torch.stack([inside, edge, edge + 1e6 * std, inside - 1e6 * std])
    with torch.no_grad():
        logits = net(pixels)
        lowest = net((net.band_mean + net.band_low * std)[None])
    torch.testing.assert_close(logits[2], logits[1])  # far past the top: as at the top
    torch.testing.assert_close(logits[3], lowest[0])
    assert not torch.allclose(logits[0], logits[1])
    assert net.config()["clamped"] is True and "clamped" not in make_net().config()
    assert SpectralFusionNet.from_config(net.config()).clamped


@pytest.mark.parametrize(
    ("clamped", "low", "high", "message"),
    [
        (False, [0.0] * 6, [1.0] * 6, "clamped=True"),
        (True, [0.0] * 5, [1.0] * 5, r"must have shape \(6,\)"),
        (True, [1.0] * 6, [0.0] * 6, "low <= high"),
        (True, [float("nan")] * 6, [1.0] * 6, "low <= high"),
    ],
)
def test_a_clamp_that_cannot_hold_is_refused(
    clamped: bool, low: list[float], high: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_net(hidden=(4,), clamped=clamped).set_clamp(low, high)
