"""Piecewise-linear band encoding (Gorishniy et al., NeurIPS 2022), trained in its own form and
saved as a plain SpectralFusionNet.

Each standardised band is cut at quantiles of the training pixels into bins, and every bin
becomes a feature: 0 below it, 1 above it, linear across it. An MLP on these features draws
sharp per-band thresholds as a tree does, which a plain MLP on smooth inputs learns slowly.

The clamp of one bin is `relu(z) - relu(z - 1)` with z an affine function of the band, so the
encoding followed by the first layer *is* a 1x1 convolution to 2 units per bin, a ReLU, and a
1x1 convolution whose weights hold each bin's column twice, with opposite signs. `export`
writes the trained network in that form: the result is an ordinary SpectralFusionNet with one
more hidden layer, so checkpoints, the folded CPU kernel, the GPU paths and their error
bounds carry it unchanged.

With `clip` q > 0 the outermost edges are a band's q and 1 − q quantiles instead of its
extremes, so its outlying values (a cloud in one date of a stack, a saturated or mis-scaled
pixel) saturate as they do beyond a tree's last split, rather than driving the logits
linearly; in training they teach nothing past the edge either. (Without bins a clip is a
clamp of each band, which SpectralFusionNet does itself: `clamped`.)
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from bandfusion.models.fusion import MIN_STD, SpectralFusionNet, combination_problem
from torch import nn

_QUANTILE_ROWS = 100_000  # pixels the bin edges are estimated from, at most


class BinnedFusionNet(nn.Module):
    """A SpectralFusionNet on the piecewise-linear encoding of standardised bands.

    Bin edges are quantiles of the standardised training pixels `x`, `bins` per band where
    the band has that many distinct quantiles (constant stretches merge bins), between the
    `clip` and 1 − `clip` quantiles (see the module's docstring). The inner
    network's own standardisation is that of the encoded training pixels. It trains through
    `member_logits` like a SpectralFusionNet; `export` gives the network to save.
    """

    band_mean: torch.Tensor
    band_std: torch.Tensor
    band: torch.Tensor
    low: torch.Tensor
    width: torch.Tensor
    spread: torch.Tensor
    offset: torch.Tensor

    def __init__(
        self, x: np.ndarray, n_classes: int, bins: int, clip: float = 0.0, **net_options: Any
    ) -> None:
        super().__init__()
        if not (isinstance(bins, int) and not isinstance(bins, bool) and bins >= 1):
            raise ValueError(f"bins must be a positive integer (or 0 for none), got {bins!r}")
        check_clip(clip)
        problem = combination_problem(
            net_options.get("norm", "batch"),
            net_options.get("activation", "relu"),
            net_options.get("members", 1),
            bins,
        )
        if problem is not None:
            raise ValueError(problem[1])
        x64 = x.astype(np.float64)
        mean, std = x64.mean(0), x64.std(0)
        std = np.where(std > MIN_STD, std, 1.0)  # as SpectralFusionNet.set_standardisation
        band, low, width = quantile_bins((x64 - mean) / std, bins, clip)
        self.register_buffer("band_mean", torch.from_numpy(mean).float())
        self.register_buffer("band_std", torch.from_numpy(std).float())
        self.register_buffer("band", torch.from_numpy(band))
        self.register_buffer("low", torch.from_numpy(low).float())
        self.register_buffer("width", torch.from_numpy(width).float())
        # The encoding's affine part from raw values, as one GEMM: z = x A + c.
        scale = 1.0 / (std[band] * width)
        spread = np.zeros((len(mean), len(band)))
        spread[band, np.arange(len(band))] = scale
        self.register_buffer("spread", torch.from_numpy(spread).float())
        self.register_buffer(
            "offset", torch.from_numpy(-(mean[band] / std[band] + low) / width).float()
        )
        self.inner = SpectralFusionNet(len(band), n_classes, **net_options)
        encoded = self.encode(torch.from_numpy(x.astype(np.float32))).double()
        self.inner.set_standardisation(encoded.mean(0).float(), encoded.std(0).float())
        self.n_classes = n_classes
        self.members = self.inner.members

    def encode(self, table: torch.Tensor) -> torch.Tensor:
        """The (pixels, bins in all) encoding of a (pixels, bands) table of raw values."""
        return torch.addmm(self.offset, table, self.spread).clamp_(0.0, 1.0)

    def member_logits(self, table: torch.Tensor) -> torch.Tensor:
        """Each member's logits (pixels, members, n_classes), as SpectralFusionNet's."""
        return self.inner.member_logits(self.encode(table))

    def forward(self, table: torch.Tensor) -> torch.Tensor:
        """Logits (pixels, n_classes) of a (pixels, bands) table."""
        return self.inner(self.encode(table))

    def export(self) -> SpectralFusionNet:
        """The same function as an ordinary SpectralFusionNet (eval mode), whose first hidden
        layer holds one ReLU hinge per bin edge: relu(band - edge), standardised units."""
        inner, k = self.inner, self.members
        edges, band = self._edges()
        net = SpectralFusionNet(
            len(self.band_mean),
            self.n_classes,
            hidden=(len(edges), *inner.hidden),
            norm=inner.norm,
            activation="relu",
            dropout=inner.dropout,
            members=k,
        )
        net.set_standardisation(self.band_mean, self.band_std)
        first = torch.zeros(len(edges), len(self.band_mean))
        first[torch.arange(len(edges)), band] = 1.0
        convs = [cast(nn.Conv2d, conv) for conv in net.convs]
        with torch.no_grad():
            convs[0].weight.copy_(first.repeat(k, 1)[:, :, None, None])
            cast(torch.Tensor, convs[0].bias).copy_(-edges.repeat(k))
            weight, bias = self._hinge_weights()
            convs[1].weight.copy_(weight[:, :, None, None])
            cast(torch.Tensor, convs[1].bias).copy_(bias)
            _pass_through(net.norms[0])
            for conv, trained in zip(convs[2:], inner.convs[1:], strict=True):
                conv.load_state_dict(trained.state_dict())
            for target, source in zip(net.norms[1:], inner.norms, strict=True):
                target.load_state_dict(source.state_dict())
        return net.eval()

    def _edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every bin edge of every band in order (a band's bins share their inner edges), and
        the band of each."""
        top = self.low + self.width
        last = torch.ones_like(self.band, dtype=torch.bool)
        last[:-1] = self.band[1:] != self.band[:-1]
        edges, band = [], []
        for b in range(len(self.band_mean)):
            mine = self.band == b
            edges += [self.low[mine], top[mine & last]]
            band += [self.band[mine], self.band[mine & last]]
        return torch.cat(edges), torch.cat(band)

    def _hinge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The inner first layer rewritten on hinges: bin t's clamp is
        (relu(x - e_t) - relu(x - e_t+1)) / width_t, so hinge j takes bin j's column over its
        width less bin j-1's; and the inner standardisation W (code - m) / s + b folded in."""
        inner_first = cast(nn.Conv2d, self.inner.convs[0])
        scaled = inner_first.weight.detach().flatten(1) / self.inner.band_std
        bias = cast(torch.Tensor, inner_first.bias).detach() - scaled @ self.inner.band_mean
        per_width = scaled / self.width
        columns = []
        for b in range(len(self.band_mean)):
            mine = per_width[:, self.band == b]
            zero = torch.zeros_like(mine[:, :1])
            columns.append(torch.cat([mine, zero], 1) - torch.cat([zero, mine], 1))
        return torch.cat(columns, 1), bias


def check_clip(clip: object) -> None:
    """ValueError unless `clip` is a share in [0, 0.5): some central range must remain."""
    if not (isinstance(clip, int | float) and not isinstance(clip, bool) and 0 <= clip < 0.5):
        raise ValueError(f"clip must be a share in [0, 0.5), got {clip!r}")


def quantile_bins(
    standard: np.ndarray, bins: int, clip: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin: its band, lower edge and width, from `bins` quantile bins of each column of
    `standard` (pixels, bands) between its `clip` and 1 − `clip` quantiles. Repeated quantiles
    merge; a constant band (or one constant over its central range) keeps one bin of width 1
    around its value, so that every band has at least one."""
    rows = standard
    if len(rows) > _QUANTILE_ROWS:
        rows = rows[np.random.default_rng(0).choice(len(rows), _QUANTILE_ROWS, replace=False)]
    levels = np.linspace(clip, 1.0 - clip, bins + 1)
    band, low, width = [], [], []
    for b in range(rows.shape[1]):
        edges = np.unique(np.quantile(rows[:, b], levels))
        if len(edges) < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        band.append(np.full(len(edges) - 1, b))
        low.append(edges[:-1])
        width.append(np.diff(edges))
    return np.concatenate(band), np.concatenate(low), np.concatenate(width)


def _pass_through(norm: nn.Module) -> None:
    """Make an eval-mode batch norm the identity (a no-op for nn.Identity)."""
    if isinstance(norm, nn.BatchNorm1d):
        norm.reset_running_stats()  # mean 0, variance 1
        norm.weight.fill_(float(np.sqrt(1.0 + norm.eps)))
        norm.bias.zero_()
