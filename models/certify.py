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
them. On trained models about one label in 10,000 is left in doubt; the engine recomputes those
where its reference runs.
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
    pick another label. Exact ties are always doubtful."""
    if logits.shape[0] < 2:
        return torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
    # Each class's gap to the best, exact for close contenders (Sterbenz); the best counts
    # itself. Several times faster on a GPU than topk along the class axis.
    gaps = torch.amax(logits, dim=0) - logits
    contenders = (gaps <= error * (2 * SLACK) + UNDERFLOW).sum(dim=0)
    return contenders > 1


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
