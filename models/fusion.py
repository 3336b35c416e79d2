"""The spectral-fusion network: a stack of 1x1 convolutions that mixes bands pixel by pixel.

A 1x1 convolution is a per-pixel linear map, so the whole network is computed as GEMMs on a
flattened (pixels, bands) table: faster than Conv2d on CPU, and tiles and pixel tables give
bit-identical logits because they run exactly the same code on exactly the same table.

With `members` k > 1 the network is an ensemble of k such stacks in one (a packed ensemble in
the manner of TabM, Gorishniy et al. 2025): the first layer has k·width outputs, later layers
are grouped 1x1 convolutions (k groups), and the logits are the members' mean. Every layer is
still linear per pixel, so the folded kernel runs each one as one dense, block-diagonal GEMM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "layer", "none"]
Activation = Literal["relu", "gelu"]

# Band standard deviations at or below this are treated as constant bands and replaced by 1, so
# standardisation never divides by (almost) zero.
MIN_STD = 1e-6

_CONFIG_KEYS = frozenset({"in_bands", "n_classes", "hidden", "norm", "activation", "dropout"})
_OPTIONAL_KEYS = frozenset({"members", "clamped"})  # added later; absent: 1, False


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_arguments(
    in_bands: object,
    n_classes: object,
    hidden: Sequence[object],
    norm: object,
    activation: object,
    dropout: object,
    members: object = 1,
    clamped: object = False,
) -> None:
    """Raise ValueError naming the first constructor argument that cannot build a network."""
    if not _is_count(in_bands):
        raise ValueError(f"in_bands must be a positive integer, got {in_bands!r}")
    if not _is_count(n_classes):
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if not all(_is_count(width) for width in hidden):
        raise ValueError(f"hidden widths must be positive integers, got {list(hidden)!r}")
    if norm not in get_args(Norm):
        raise ValueError(f"norm must be one of {get_args(Norm)}, got {norm!r}")
    if activation not in get_args(Activation):
        raise ValueError(f"activation must be one of {get_args(Activation)}, got {activation!r}")
    is_number = isinstance(dropout, int | float) and not isinstance(dropout, bool)
    if not (is_number and 0.0 <= cast(float, dropout) < 1.0):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if not _is_count(members):
        raise ValueError(f"members must be a positive integer, got {members!r}")
    if not isinstance(clamped, bool):
        raise ValueError(f"clamped must be True or False, got {clamped!r}")
    problem = combination_problem(norm, activation, members)
    if problem is not None:
        raise ValueError(problem[1])


def combination_problem(
    norm: object, activation: object, members: object, bins: object = 0
) -> tuple[str, str] | None:
    """(argument, why) where arguments that are each valid cannot build a network together,
    else None: a layer norm mixes the channels of an ensemble's members, or of binned bands
    (bandfusion.models.embedding), whose bin clamps are two ReLUs each. The one statement of
    these rules: the networks refuse them, a fit names the setting, the search skips them."""
    if members != 1 and norm == "layer":
        return "norm", "norm 'layer' would mix the members of an ensemble; use batch or none"
    if bins and activation != "relu":
        return "activation", "binned bands need activation 'relu' (a bin's clamp is two ReLUs)"
    if bins and norm == "layer":
        return "norm", "a layer norm would mix binned bands; use norm 'batch' or 'none'"
    return None


def _make_norm(norm: Norm, width: int) -> nn.Module:
    """Normalisation over the channels of a (pixels, channels) table."""
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


def _pixel_linear(conv: nn.Conv2d, table: torch.Tensor) -> torch.Tensor:
    """Apply a 1x1 convolution to a (pixels, c_in) table: one GEMM, or one per group."""
    if conv.groups == 1:
        return F.linear(table, conv.weight.flatten(1), conv.bias)
    groups, c_out = conv.groups, conv.out_channels
    weight = conv.weight.reshape(groups, c_out // groups, -1)
    grouped = table.reshape(len(table), groups, -1).transpose(0, 1)  # (groups, pixels, c_in/g)
    out = torch.bmm(grouped, weight.transpose(1, 2)).transpose(0, 1).reshape(len(table), c_out)
    return out if conv.bias is None else out + conv.bias


class UniformDropout(nn.Module):
    """Inverted dropout, as nn.Dropout, with its mask drawn from torch.rand: on a CPU torch's
    Bernoulli sampling behind nn.Dropout is several times slower, and it was the largest
    single cost of a training step. Masks come from `generator` where training sets one (a
    fit's own stream, so a fit does not depend on what else draws from torch's global
    generator), else from the global one."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        draw = torch.rand(x.shape, dtype=x.dtype, device=x.device, generator=self.generator)
        return x * (draw >= self.p) * (1.0 / (1.0 - self.p))


class SpectralFusionNet(nn.Module):
    """Per-pixel land-cover classifier built from 1x1 convolutions.

    For each hidden width: conv1x1 → norm → activation → dropout; then a conv1x1 to `n_classes`
    logits. `hidden=()` gives a linear model. `members` k > 1 makes it k such networks in one
    (grouped convolutions), each trained on its own loss, whose logits are averaged. Inputs
    are standardised inside the model with the `band_mean` / `band_std` buffers, so a saved
    model carries its own preprocessing. A `clamped` network then clamps each standardised
    band to [`band_low`, `band_high`] (`set_clamp`): past them a band saturates, as past a
    tree's last split, so an outlying value cannot drive the logits.
    """

    band_mean: torch.Tensor
    band_std: torch.Tensor
    band_low: torch.Tensor
    band_high: torch.Tensor

    def __init__(
        self,
        in_bands: int,
        n_classes: int,
        hidden: Sequence[int] = (64, 64),
        norm: Norm = "batch",
        activation: Activation = "relu",
        dropout: float = 0.0,
        members: int = 1,
        clamped: bool = False,
    ) -> None:
        super().__init__()
        _check_arguments(in_bands, n_classes, hidden, norm, activation, dropout, members, clamped)
        self.in_bands = in_bands
        self.n_classes = n_classes
        self.hidden = tuple(hidden)
        self.norm = norm
        self.activation = activation
        self.dropout = float(dropout)
        self.members = members
        self.clamped = clamped
        k = members
        self.convs = nn.ModuleList(
            nn.Conv2d(
                c_in if i == 0 else k * c_in, k * c_out, kernel_size=1, groups=1 if i == 0 else k
            )
            for i, (c_in, c_out) in enumerate(pairwise(self.widths()))
        )
        self.norms = nn.ModuleList(_make_norm(norm, k * width) for width in self.hidden)
        self.act: nn.Module = nn.ReLU() if activation == "relu" else nn.GELU()
        self.drop = UniformDropout(self.dropout)
        self.register_buffer("band_mean", torch.zeros(in_bands))
        self.register_buffer("band_std", torch.ones(in_bands))
        if clamped:
            self.register_buffer("band_low", torch.full((in_bands,), -torch.inf))
            self.register_buffer("band_high", torch.full((in_bands,), torch.inf))

    def widths(self) -> list[int]:
        """Channel counts of one member from input to output: [in_bands, *hidden, n_classes]."""
        return [self.in_bands, *self.hidden, self.n_classes]

    def flops_per_pixel(self) -> int:
        """Multiply-adds of the convolutions per pixel, counted as 2·members·Σ c_in·c_out."""
        return 2 * self.members * sum(c_in * c_out for c_in, c_out in pairwise(self.widths()))

    def config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON data; `from_config` rebuilds the network.

        `members` is written only for ensembles and `clamped` only for clamped networks, so
        other networks keep the format that earlier versions read.
        """
        cfg: dict[str, Any] = {
            "in_bands": self.in_bands,
            "n_classes": self.n_classes,
            "hidden": list(self.hidden),
            "norm": self.norm,
            "activation": self.activation,
            "dropout": self.dropout,
        }
        if self.members != 1:
            cfg["members"] = self.members
        if self.clamped:
            cfg["clamped"] = True
        return cfg

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SpectralFusionNet:
        """A freshly initialised network of the architecture `cfg` describes (see `config`).

        Raises ValueError when keys are missing or unknown or a value is invalid.
        """
        missing = sorted(_CONFIG_KEYS - set(cfg))
        unknown = sorted(set(cfg) - _CONFIG_KEYS - _OPTIONAL_KEYS)
        if missing:
            raise ValueError(f"architecture lacks {', '.join(missing)}")
        if unknown:
            raise ValueError(f"unknown architecture keys {', '.join(map(str, unknown))}")
        hidden = cfg["hidden"]
        if not isinstance(hidden, list | tuple):
            raise ValueError(f"hidden must be a list of widths, got {hidden!r}")
        return cls(
            in_bands=cfg["in_bands"],
            n_classes=cfg["n_classes"],
            hidden=hidden,
            norm=cfg["norm"],
            activation=cfg["activation"],
            dropout=cfg["dropout"],
            members=cfg.get("members", 1),
            clamped=cfg.get("clamped", False),
        )

    def set_standardisation(
        self, mean: torch.Tensor | Sequence[float], std: torch.Tensor | Sequence[float]
    ) -> None:
        """Store per-band mean and standard deviation learned from the training pixels.

        Standard deviations <= MIN_STD (constant bands) are replaced by 1.
        """
        mean_t = self._band_vector(mean, "mean")
        std_t = self._band_vector(std, "std")
        std_t = torch.where(std_t > MIN_STD, std_t, torch.ones_like(std_t))
        with torch.no_grad():
            self.band_mean.copy_(mean_t)
            self.band_std.copy_(std_t)

    def set_clamp(
        self, low: torch.Tensor | Sequence[float], high: torch.Tensor | Sequence[float]
    ) -> None:
        """Store the range each standardised band is clamped to (a clamped network only);
        ±inf leaves that side open."""
        if not self.clamped:
            raise ValueError("set_clamp needs a network built with clamped=True")
        low_t = self._band_vector(low, "low", finite=False)
        high_t = self._band_vector(high, "high", finite=False)
        if bool(torch.isnan(low_t).any() | torch.isnan(high_t).any()) or bool(
            (low_t > high_t).any()
        ):
            raise ValueError("band low and high must be numbers with low <= high")
        with torch.no_grad():
            self.band_low.copy_(low_t)
            self.band_high.copy_(high_t)

    def first_layer_weights(self) -> torch.Tensor:
        """The learned band-mixing weights (c_out, in_bands) of the first layer, a detached copy.

        They act on standardised bands, so their magnitudes are comparable across bands.
        """
        return self._convs()[0].weight.detach().flatten(1).clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a (N, C) pixel table → (N, K), or for (N, C, H, W) tiles → (N, K, H, W).

        Tiles come back as a channels-last view of the (N·H·W, K) result table.
        """
        self._check_input(x)
        if x.ndim == 2:
            return self._forward_table(x)
        n, c, h, w = x.shape
        table = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
        logits = self._forward_table(table)
        return logits.reshape(n, h, w, self.n_classes).permute(0, 3, 1, 2)

    def member_logits(self, table: torch.Tensor) -> torch.Tensor:
        """Each member's logits (pixels, members, n_classes) for a (pixels, in_bands) table."""
        x = (table - self.band_mean) / self.band_std
        if self.clamped:
            x = torch.clamp(x, self.band_low, self.band_high)
        *hidden, last = self._convs()
        for conv, norm in zip(hidden, self.norms, strict=True):
            x = self.drop(self.act(norm(_pixel_linear(conv, x))))
        return _pixel_linear(last, x).reshape(len(table), self.members, self.n_classes)

    def _forward_table(self, table: torch.Tensor) -> torch.Tensor:
        """The network on a (pixels, in_bands) table; every input shape goes through here."""
        logits = self.member_logits(table)
        return logits[:, 0] if self.members == 1 else logits.mean(dim=1)

    def _convs(self) -> list[nn.Conv2d]:
        return [cast(nn.Conv2d, conv) for conv in self.convs]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim not in (2, 4):
            raise ValueError(
                f"expected a (N, C) pixel table or (N, C, H, W) tiles, got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_bands:
            raise ValueError(
                f"input has {x.shape[1]} bands (dim 1), the model expects {self.in_bands}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expected a floating-point tensor, got {x.dtype}; convert first")

    def _band_vector(
        self, values: torch.Tensor | Sequence[float], what: str, *, finite: bool = True
    ) -> torch.Tensor:
        """`values` as a float vector of length in_bands, finite unless told not, or
        ValueError."""
        vector = torch.as_tensor(values, dtype=self.band_mean.dtype).detach()
        if tuple(vector.shape) != (self.in_bands,):
            raise ValueError(
                f"band {what} must have shape ({self.in_bands},), got {tuple(vector.shape)}"
            )
        if finite and not bool(torch.isfinite(vector).all()):
            raise ValueError(f"band {what} holds NaN or infinite values")
        return vector
