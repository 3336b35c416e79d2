"""Which labels every fp32 evaluation of a folded network agrees on, from rounding-error bounds.

Two fp32 GEMMs of the same weights (a GPU's and a CPU's, or two tilings) sum in different
orders, so near-tied logits can pick different classes. A dot product of length n computed in
any order, with or without FMA, is within γ(n+1) = (n+1)u / (1 - (n+1)u) of exact, relative to
|W||x| + |b|, with u the unit roundoff (Higham, *Accuracy and Stability of Numerical Algorithms*,
§3.1). If two evaluations' inputs to a layer differ by at most E (elementwise), their outputs
differ by at most |W|·((1 + γ)E + 2γ|x|) + 2γ|b|, with x either side's input; ReLU is exact and
1-Lipschitz, and the centred input is computed identically everywhere (E = 0). So one extra GEMM
a layer, on absolute values, bounds how far any other fp32 evaluation's logits can be from
these: a label whose two best logits are further apart than twice that is the same in all of
them. On trained models few labels are left in doubt; the engine recomputes those
where its reference runs.

The fused GPU kernel multiplies fp16 copies W̃ of the weights by fp16 copies of the activations
(relative error u_h, or an absolute HALF_UNDERFLOW when tiny), accumulating in fp32. Against any
fp32 evaluation, a layer's outputs then differ by at most
E' = E·(1 + γ)|W| + |x|·((u_h + γ_a(1 + u_h))|W̃| + |W̃ - W| + γ|W|) + c, with γ_a the
accumulation's γ and c the underflow and bias terms. The recursion is linear with nonnegative
matrices, so it unrolls: the logits' bound is Σ_l |x_l|·P_l + constant, one (c_in, K) matrix per
layer, which the kernel applies to the inputs it already holds (`half_precision_bound`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

FP32_UNIT_ROUNDOFF = 2.0**-24
TF32_UNIT_ROUNDOFF = 2.0**-11
SLACK = 1.01
"""Headroom for the bound's own fp32 rounding and the margin test's (a few ulps each)."""
UNDERFLOW = 1e-30
"""Headroom for flushed or gradual underflow, which the relative bound does not cover."""
HALF_UNIT_ROUNDOFF = 2.0**-11
HALF_UNDERFLOW = 2.0**-14
"""The most an fp16 cast (round to nearest) of an activation below fp16's smallest normal can
lose, whether the hardware keeps subnormals or flushes them."""
ACCUMULATION_UNIT_ROUNDOFF = 2.0**-20
"""Tensor cores' fp32 accumulation, taken 16× coarser than IEEE fp32: they align the products to
the largest with truncation and few guard bits (Fasi et al., *Numerical behavior of NVIDIA tensor
cores*, 2021), which stays within twice fp32's unit roundoff a step."""


@dataclass(frozen=True)
class LabelBound:
    """|W| and |b| of each layer (x @ W + b, then ReLU but for the last) and its γ(n+1)."""

    abs_weights: list[torch.Tensor]  # (c_in, c_out), fp32, on the kernel's device
    abs_biases: list[torch.Tensor]  # (c_out,)
    gammas: list[float]

    def logit_error(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """(n,) float32: how far another fp32 evaluation's logits can be from these, at most.

        `inputs` are what each layer read: the (n, bands) centred pixels, then each hidden
        layer's (n, width) output.
        """
        error: torch.Tensor | None = None
        for x, weight, bias, gamma in zip(
            inputs, self.abs_weights, self.abs_biases, self.gammas, strict=True
        ):
            spread = x.abs().mul_(2 * gamma)
            if error is not None:
                spread.add_(error, alpha=1 + gamma)
            error = torch.addmm(bias, spread, weight, beta=2 * gamma)
        assert error is not None
        return torch.amax(error, dim=1)


def doubtful(logits: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    """Bool (n,): whether an evaluation whose (K, n) logits are within `error` of these could
    pick another label. Exact ties are always doubtful, and so are non-finite logits or errors
    (an overflow, a NaN): then no class, or every one, is a contender."""
    if logits.shape[0] < 2:
        return torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
    # Each class's gap to the best, exact for close contenders (Sterbenz); the best counts
    # itself. Several times faster on a GPU than topk along the class axis.
    gaps = torch.amax(logits, dim=0) - logits
    contenders = (gaps <= error * (2 * SLACK) + UNDERFLOW).sum(dim=0)
    return contenders != 1


def label_bound(
    weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], unit_roundoff: float
) -> LabelBound:
    """The bound for layers x ↦ x @ W + b, `weights` (c_in, c_out), at `unit_roundoff`."""
    return LabelBound(
        abs_weights=[w.abs().float() for w in weights],
        abs_biases=[b.abs().float() for b in biases],
        gammas=[_gamma(w.shape[0] + 1, unit_roundoff) for w in weights],
    )


def _gamma(n: int, unit_roundoff: float) -> float:
    """Higham's γ(n) = n·u / (1 - n·u): the relative error bound of an n-term sum."""
    nu = n * unit_roundoff
    if nu >= 1:
        raise ValueError(f"γ({n}) is unbounded at unit roundoff {unit_roundoff}")
    return nu / (1 - nu)


@dataclass(frozen=True)
class HalfPrecisionBound:
    """The unrolled bound of an evaluation whose first layer runs in fp32 and the others in fp16.

    The logits' error is at most `headroom` · (|x_0|·first + Σ_l x_l·later[l]) + constant, with
    x_0 the centred pixels and x_l each later layer's fp16 input (nonnegative: ReLU outputs).
    """

    first: torch.Tensor  # (bands, K) float64
    later: list[torch.Tensor]  # (c_in, K) float64, one per layer after the first
    constant: torch.Tensor  # (K,) float64
    headroom: float
    """Covers the fp16 rounding of the x_l the kernel multiplies and the accumulation of Σ."""


def half_precision_bound(
    weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], halves: Sequence[torch.Tensor]
) -> HalfPrecisionBound:
    """The bound for layers x ↦ x @ W + b with fp32 `weights` (c_in, c_out), all but the first
    run with `halves`: their fp16 copies as multiplied (any scaling undone)."""
    weights = [w.double() for w in weights]
    biases = [b.double() for b in biases]
    carried = [(1 + _gamma(w.shape[0] + 1, FP32_UNIT_ROUNDOFF)) * w.abs() for w in weights]
    # Each layer's new error, as coefficients of its input and a constant (E' = E·A + |x|·M + c).
    gamma = _gamma(weights[0].shape[0] + 1, FP32_UNIT_ROUNDOFF)
    terms = [(2 * gamma * weights[0].abs(), 2 * gamma * biases[0].abs())]
    width = 0
    for weight, bias, half in zip(weights[1:], biases[1:], halves, strict=True):
        n = weight.shape[0] + 1
        width = max(width, n)
        gamma, gamma_acc = _gamma(n, FP32_UNIT_ROUNDOFF), _gamma(n, ACCUMULATION_UNIT_ROUNDOFF)
        half = half.double()
        rounding = HALF_UNIT_ROUNDOFF + gamma_acc * (1 + HALF_UNIT_ROUNDOFF)
        inputs = rounding * half.abs() + (half - weight).abs() + gamma * weight.abs()
        underflow = HALF_UNDERFLOW * (1 + gamma_acc) * half.abs().sum(dim=0)
        constant = underflow + (gamma_acc + gamma) * bias.abs()
        terms.append((inputs, constant))
    # Unrolled: each term travels through the later layers' A; x_l ≥ 0 is what the kernel holds
    # in fp16, x_l ≤ (fp16(x_l) + HALF_UNDERFLOW) / (1 - u_h).
    coefficients: list[torch.Tensor] = []
    total = torch.zeros(weights[-1].shape[1], dtype=torch.float64)
    for layer, (inputs, constant) in enumerate(terms):
        for later in carried[layer + 1 :]:
            inputs, constant = inputs @ later, constant @ later
        if layer > 0:
            constant = constant + HALF_UNDERFLOW * inputs.sum(dim=0) / (1 - HALF_UNIT_ROUNDOFF)
        coefficients.append(inputs)
        total = total + constant
    gamma_sum = _gamma(width, ACCUMULATION_UNIT_ROUNDOFF)
    headroom = (1 + gamma_sum) / (1 - HALF_UNIT_ROUNDOFF) * (1 + 2.0**-16)
    return HalfPrecisionBound(coefficients[0], coefficients[1:], total, headroom)
