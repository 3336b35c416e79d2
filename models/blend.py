"""A blend: networks trained apart whose logits are averaged, saved as one SpectralFusionNet.

Averaging networks of different kinds (a plain one and one on binned bands) cuts the variance
one fit carries on a small table, where neither kind alone is best (bench/RESULTS.md). Once
folded (bandfusion.models.folding) each network is a chain of dense layers, and a blend sets
the chains side by side: the first layer stacks the chains' first layers, each later hidden
layer is block-diagonal over the chains', and the logits layer holds every chain's logits layer
divided by the number of chains. A shallower chain is carried to the deepest one's depth by
identity layers after its last hidden layer, exact because that layer's ReLU output is never
negative; a chain with no hidden layer is carried as relu(x) - relu(-x). The result is an
ordinary network (no norm, one member), so checkpoints, the folded CPU kernel and the GPU
paths carry it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
from bandfusion.models.folding import folded_layers
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.parallel import side_by_side
from bandfusion.models.training import FitResult, FitSettings, fit_pixels
from bandfusion.progress import Progress
from torch import nn

Chain = list[tuple[torch.Tensor, torch.Tensor]]  # float64 (weight (c_out, c_in), bias) per layer


def fit_blend(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    members: Sequence[FitSettings],
    class_weights: np.ndarray | None = None,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> FitResult:
    """One fit_pixels per settings in `members`, side by side on the usable cores, averaged
    as one network (`average_nets`); one settings is a plain fit. The history and `progress`
    are those of the first member's fit."""

    tasks = [
        partial(
            fit_pixels,
            x,
            y,
            n_classes=n_classes,
            x_val=x_val,
            y_val=y_val,
            settings=settings,
            class_weights=class_weights,
            device=device,
            progress=progress if index == 0 else None,  # the first runs here (side_by_side)
        )
        for index, settings in enumerate(members)
    ]
    fits = side_by_side(tasks, torch.device(device))
    if len(fits) == 1:
        return fits[0]
    return FitResult(average_nets([fit.net for fit in fits]), fits[0].history)


def average_nets(nets: Sequence[SpectralFusionNet]) -> SpectralFusionNet:
    """One network (eval mode) whose logits are the mean of `nets`' logits, up to rounding.

    The networks must take the same bands to the same classes with one activation, without a
    layer norm or a clamp; networks of different depths must use ReLU. ValueError otherwise.
    """
    first = nets[0]
    _check_blendable(nets)
    mean = first.band_mean.detach().double()
    chains = [_chain(net, mean) for net in nets]
    depth = max(len(chain) for chain in chains)
    chains = [_deepened(chain, depth) for chain in chains]
    widths = [sum(len(chain[layer][0]) for chain in chains) for layer in range(depth - 1)]
    blend = SpectralFusionNet(
        first.in_bands, first.n_classes, hidden=widths, norm="none", activation=first.activation
    )
    blend.set_standardisation(first.band_mean, torch.ones(first.in_bands))  # std folded in
    share = 1.0 / len(chains)
    if depth == 1:  # linear networks: the mean of their one layer
        layers = [_mean_layer([chain[0] for chain in chains], share)]
    else:
        first_layers = [chain[0] for chain in chains]
        layers = [
            (torch.cat([w for w, _ in first_layers]), torch.cat([b for _, b in first_layers]))
        ]
        for layer in range(1, depth - 1):
            layers.append(
                (
                    torch.block_diag(*[chain[layer][0] for chain in chains]),
                    torch.cat([chain[layer][1] for chain in chains]),
                )
            )
        last_weights = torch.cat([chain[-1][0] for chain in chains], dim=1)
        last_bias = torch.stack([chain[-1][1] for chain in chains]).sum(0)
        layers.append((last_weights * share, last_bias * share))
    with torch.no_grad():
        for conv, (weight, bias) in zip(blend.convs, layers, strict=True):
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            conv.weight.copy_(weight[:, :, None, None])
            conv.bias.copy_(bias)
    return blend.eval()


def _mean_layer(
    layers: list[tuple[torch.Tensor, torch.Tensor]], share: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean of layers that take the same input."""
    return (
        torch.stack([w for w, _ in layers]).sum(0) * share,
        torch.stack([b for _, b in layers]).sum(0) * share,
    )


def _check_blendable(nets: Sequence[SpectralFusionNet]) -> None:
    first = nets[0]
    if any((net.in_bands, net.n_classes) != (first.in_bands, first.n_classes) for net in nets):
        raise ValueError("blended networks must take the same bands to the same classes")
    problem = blend_problem(
        norms=[net.norm for net in nets],
        activations=[net.activation for net in nets],
        depths=[len(net.hidden) for net in nets],
        clamped=[net.clamped for net in nets],
    )
    if problem is not None:
        raise ValueError(problem)


def blend_problem(
    *,
    norms: Sequence[str],
    activations: Sequence[str],
    depths: Sequence[int],
    clamped: Sequence[bool],
) -> str | None:
    """Why networks of these kinds (one entry each) cannot be averaged as one, or None. The
    one statement of these rules: `average_nets` refuses them, the search (its settings'
    `blend_problem`) does not blend them."""
    if "layer" in norms or any(clamped):
        return (
            "networks with a layer norm or clamped (clipped) bands cannot be blended: a layer "
            "norm would mix their channels, and every network would need the same clamps"
        )
    if len(set(depths)) > 1 and any(activation != "relu" for activation in activations):
        return "networks of different depths are blended through ReLU identity layers only"
    if len(set(activations)) > 1:
        return "blended networks must share one activation"
    return None


def _chain(net: SpectralFusionNet, mean: torch.Tensor) -> Chain:
    """The folded layers of `net` for inputs centred on `mean` (the blend's band means)."""
    layers, own_mean = folded_layers(net)
    chain = [(weight, bias) for weight, bias, _, _ in layers]
    weight, bias = chain[0]
    chain[0] = (weight, bias + weight @ (mean - own_mean))  # W (x - m') = W (x - m) + W (m - m')
    return chain


def _deepened(chain: Chain, depth: int) -> Chain:
    """`chain` with identity layers before its logits layer, to `depth` layers in all."""
    extra = depth - len(chain)
    if extra == 0:
        return chain
    *hidden, (weight, bias) = chain
    if hidden:
        width = len(hidden[-1][0])
        identity = torch.eye(width, dtype=torch.float64)
        return [*hidden, *[(identity, torch.zeros(width, dtype=torch.float64))] * extra, chain[-1]]
    bands = weight.shape[1]  # no hidden layer: carry the signed input as its two ReLU halves
    eye = torch.eye(bands, dtype=torch.float64)
    halves = [(torch.cat([eye, -eye]), torch.zeros(2 * bands, dtype=torch.float64))]
    halves += [
        (torch.eye(2 * bands, dtype=torch.float64), torch.zeros(2 * bands, dtype=torch.float64))
    ] * (extra - 1)
    return [*halves, (torch.cat([weight, -weight], dim=1), bias)]
