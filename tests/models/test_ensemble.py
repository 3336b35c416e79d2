"""Ensembles in one network (`members`): grouped layers hold independent members whose logits
are averaged, single networks keep their format, and the parameter count counts every member."""

from __future__ import annotations

import pytest
import torch
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import parameter_count

from tests.nets import make_net


def test_logits_are_the_mean_of_the_members_logits() -> None:
    net = make_net(hidden=(16, 8), members=3)
    table = torch.randn(50, 6) * 10 + 50
    with torch.no_grad():
        members = net.member_logits(table)
        assert members.shape == (50, 3, 4)
        torch.testing.assert_close(net(table), members.mean(dim=1))


def test_members_are_independent_networks() -> None:
    """Each member's logits depend only on its own slice of every layer's weights."""
    net = make_net(hidden=(16, 8), members=3, norm="none")
    table = torch.randn(20, 6)
    with torch.no_grad():
        before = net.member_logits(table)
        for conv in net.convs:
            conv.weight[: conv.out_channels // 3] += 1.0  # member 0's rows only
        after = net.member_logits(table)
    assert not torch.equal(after[:, 0], before[:, 0])
    assert torch.equal(after[:, 1:], before[:, 1:])


def test_single_networks_keep_the_earlier_config_and_ensembles_record_members() -> None:
    assert "members" not in make_net(hidden=(8,)).config()
    ensemble = make_net(hidden=(8,), members=2)
    assert ensemble.config()["members"] == 2
    assert SpectralFusionNet.from_config(ensemble.config()).members == 2


@pytest.mark.parametrize(("hidden", "members"), [((8,), 1), ((16, 8), 3), ((), 4)])
def test_the_parameter_count_counts_every_member(hidden: tuple[int, ...], members: int) -> None:
    net = SpectralFusionNet(6, 4, hidden, norm="none", members=members)
    assert parameter_count(net.widths(), members) == sum(p.numel() for p in net.parameters())
    assert net.flops_per_pixel() == members * SpectralFusionNet(6, 4, hidden).flops_per_pixel()


@pytest.mark.parametrize(
    ("members", "norm", "problem"),
    [(0, "batch", "members must be a positive integer"), (2, "layer", "norm 'layer'")],
)
def test_invalid_members_are_refused(members: int, norm: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SpectralFusionNet(6, 4, (8,), norm=norm, members=members)  # type: ignore[arg-type]
