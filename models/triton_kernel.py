"""The whole folded network as one Triton kernel: band-major pixels in, labels out, on a GPU.

The torch kernel runs each layer as its own GEMM and elementwise passes, so a pixel's activations
travel through GPU memory several times (every layer's activations). Here each program
keeps a block of pixels in registers through every layer: it reads the scene's own integers (24
bytes a pixel for 12 uint16 bands) and writes a label byte and a doubt byte.

The first layer runs in fp32 FMAs, as the CPU does (its inputs are raw reflectances, beyond
fp16's range); the others on the tensor cores in fp16 or bf16, accumulating in fp32. When
certifying, fp16 kernels also apply `bandfusion.models.certify`'s unrolled bound, one narrow
GEMM a layer: a label they do not mark doubtful is the one every fp32 evaluation gives.

Triton is optional (it comes with PyTorch's CUDA wheels): without it, or for networks it does not
cover, the engine runs the torch kernel. With TRITON_INTERPRET=1 the same kernel runs on the CPU
under Triton's interpreter, which is how the tests check it where there is no GPU.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from bandfusion.models.certify import SLACK, UNDERFLOW, half_precision_bound
from bandfusion.models.inference import TorchKernel

BLOCK_PIXELS = 128
"""Pixels a program carries through the layers: a (128, 64) fp32 activation fills 64 registers
of each of 4 warps' threads."""
WARPS = 4

HALF_MAX_EXPONENT = 14
"""fp16 copies of weights are scaled by a power of two to put their largest near 2**14: far from
overflow (65504) and keeping small weights above the subnormals."""

INPUT_MASKS = {torch.int16: 0xFFFF, torch.int32: 0xFFFFFFFF}
"""Carriers of unsigned pixels (see `bandfusion.engine.cuda`): the kernel widens and masks them
back."""

EXACT_INPUTS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.float16, torch.float32)
"""Pixel dtypes whose fp32 conversion and centring the kernel does exactly as the CPU does."""


def triton_available() -> bool:
    """Whether Triton is installed (imported only when a fused kernel is built)."""
    return importlib.util.find_spec("triton") is not None


def unsupported(kernel: TorchKernel) -> str | None:
    """Why `kernel`'s network cannot run as one Triton kernel here, or None if it can."""
    if not triton_available():
        return "Triton is not installed"
    layers = kernel.layers
    if len(layers) < 2:
        return "it has no hidden layer"
    if any(layer.layer_norm is not None or layer.activation != "relu" for layer in layers[:-1]):
        return "only ReLU layers without layer norm are fused"
    if kernel.n_classes > 256:
        return "more than 256 classes"
    if max(layer.weight.shape[1] for layer in layers[:-1]) > 256:
        return "a hidden layer wider than 256"
    return None


@dataclass(frozen=True)
class FusedTritonClassifier:
    """Labels (and, when certifying, doubt) of a folded network over band-major pixel tables."""

    tensors: dict[str, torch.Tensor]  # the kernel's weights and bound, on its device
    bands: int
    later: int  # layers between the first and the logits
    hidden: int  # the hidden width, padded to a power of two ≥ 16
    classes: int
    classes_padded: int
    certify: bool
    headroom: float
    clamped: bool  # the network clamps its centred bands (tensors "low" and "high")

    @classmethod
    def from_kernel(
        cls, kernel: TorchKernel, *, dtype: torch.dtype, certify: bool
    ) -> FusedTritonClassifier:
        """The fused form of `kernel` on its device, with later layers in `dtype` (fp16/bf16).

        Certifying needs an fp32 `kernel` (the evaluation certified against) and fp16.
        """
        reason = unsupported(kernel)
        if reason is not None:
            raise ValueError(f"this network cannot be fused: {reason}")
        if certify and (kernel.precision != "fp32" or dtype != torch.float16):
            raise ValueError("certified fused labels need an fp32 kernel and fp16 layers")
        weights = [layer.weight.double().cpu() for layer in kernel.layers]
        biases = [layer.bias.double().cpu() for layer in kernel.layers]
        hidden = _padded(max(w.shape[1] for w in weights[:-1]))
        classes = weights[-1].shape[1]
        classes_padded = _padded(classes)
        halves, scales = zip(*(_half_copy(w, dtype) for w in weights[1:]), strict=True)
        device = kernel.device
        tensors = {
            "mean": kernel.band_mean.float(),
            "low": (kernel.band_mean if kernel.clamp is None else kernel.clamp[0]).float(),
            "high": (kernel.band_mean if kernel.clamp is None else kernel.clamp[1]).float(),
            "w_first": _pad(weights[0], len(weights[0]), hidden).float(),
            "b_first": _pad(biases[0][None], 1, hidden).float()[0],
            "w_later": torch.stack(
                [_pad(h, hidden, hidden) for h in halves[:-1]]
                or [torch.zeros(hidden, hidden, dtype=dtype)]
            ),
            "b_later": torch.stack(
                [_pad(b[None], 1, hidden)[0] for b in biases[1:-1]]
                or [torch.zeros(hidden, dtype=torch.float64)]
            ).float(),
            "w_last": _pad(halves[-1], hidden, classes_padded),
            "b_last": _pad(biases[-1][None], 1, classes_padded).float()[0],
        }
        # Per later layer, the power of two that undoes its half-precision copy's scaling.
        tensors["scales"] = torch.tensor(scales)
        tensors["bound_scales"] = torch.ones(len(scales))
        headroom = 1.0
        if certify:
            dequantized = [h.double() * s for h, s in zip(halves, scales, strict=True)]
            bound = half_precision_bound(weights, biases, dequantized)
            later = [_half_copy(p, torch.float16, round_up=True) for p in bound.later]
            tensors |= {
                "bound_scales": torch.tensor([scale for _, scale in later]),
                "bound_first": _pad(bound.first, len(weights[0]), classes_padded).float(),
                "bound_later": torch.stack([_pad(p, hidden, classes_padded) for p, _ in later]),
                "bound_constant": _pad(bound.constant[None], 1, classes_padded).float()[0],
            }
            headroom = bound.headroom
        return cls(
            tensors={name: t.contiguous().to(device) for name, t in tensors.items()},
            bands=len(weights[0]),
            later=len(weights) - 2,
            hidden=hidden,
            classes=classes,
            classes_padded=classes_padded,
            certify=certify,
            clamped=kernel.clamp is not None,
            headroom=headroom,
        )

    def reads(self, dtype: torch.dtype) -> bool:
        """Whether the kernel reads pixels of `dtype` (as the CPU kernel does, exactly)."""
        return dtype in EXACT_INPUTS

    def classify(
        self,
        pixels: torch.Tensor,
        *,
        unsigned: bool = False,
        label_dtype: torch.dtype = torch.uint8,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(C, M) band-major pixels on the kernel's device → (M,) labels and (M,) bool doubt.

        `unsigned`: int16/int32 `pixels` carry uint16/uint32 bits. Without certification no
        label is doubtful.
        """
        labels, doubt, _ = self._run(pixels, unsigned, label_dtype, with_logits=False)
        return labels, doubt

    def logits_and_bound(
        self, pixels: torch.Tensor, *, unsigned: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, K) fp32 logits and the (M,) bound on their distance from any fp32 evaluation's
        (certifying kernels): what the labels' doubt is decided from, for checking the bound."""
        _, _, extra = self._run(pixels, unsigned, torch.int32, with_logits=True)
        assert extra is not None
        logits, bound = extra
        return logits[:, : self.classes], bound

    def _run(
        self, pixels: torch.Tensor, unsigned: bool, label_dtype: torch.dtype, with_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        if pixels.ndim != 2 or pixels.shape[0] != self.bands:
            raise ValueError(
                f"expected ({self.bands}, pixels) band-major pixels, got {tuple(pixels.shape)}"
            )
        if pixels.dtype not in EXACT_INPUTS:
            raise ValueError(f"the fused kernel does not read {pixels.dtype} pixels")
        if unsigned and pixels.dtype not in INPUT_MASKS:
            raise ValueError(f"{pixels.dtype} does not carry unsigned pixels")
        if pixels.stride(1) != 1:
            pixels = pixels.contiguous()
        n = pixels.shape[1]
        device = pixels.device
        labels = torch.empty(n, dtype=label_dtype, device=device)
        doubt = torch.zeros(n, dtype=torch.bool, device=device)
        logits = torch.empty((n, self.classes_padded) if with_logits else (1, 1), device=device)
        bound = torch.empty(n if with_logits else 1, device=device)
        t = self.tensors
        certified = self.certify
        kernel = _compiled()
        grid = (max(1, -(-n // BLOCK_PIXELS)),)
        kernel[grid](
            pixels, n, pixels.stride(0), t["mean"], t["low"], t["high"], t["w_first"], t["b_first"],
            t["w_later"], t["b_later"], t["w_last"], t["b_last"],
            t["bound_first"] if certified else t["b_first"],
            t["bound_later"] if certified else t["w_later"],
            t["bound_constant"] if certified else t["b_last"],
            t["scales"], t["bound_scales"], self.headroom,
            2 * SLACK, UNDERFLOW,
            labels, doubt.view(torch.uint8), logits, bound,
            BANDS=self.bands, HIDDEN=self.hidden, LATER=self.later,
            CLASSES=self.classes, CLASSES_PADDED=self.classes_padded,
            MASK=INPUT_MASKS[pixels.dtype] if unsigned else 0, CLAMP=self.clamped,
            CERTIFY=certified, WITH_LOGITS=with_logits, BLOCK=BLOCK_PIXELS,
            num_warps=WARPS,
        )  # fmt: skip
        return labels, doubt, (logits, bound) if with_logits else None


def _padded(width: int) -> int:
    """The power of two ≥ `width` and ≥ 16 (tensor-core dots need 16 a side)."""
    return max(16, 1 << (width - 1).bit_length())


def _pad(matrix: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """`matrix` in the top-left corner of a (rows, cols) block of zeros."""
    out = torch.zeros(rows, cols, dtype=matrix.dtype)
    out[: matrix.shape[0], : matrix.shape[1]] = matrix
    return out


def _half_copy(
    matrix: torch.Tensor, dtype: torch.dtype, round_up: bool = False
) -> tuple[torch.Tensor, float]:
    """`matrix` · 2**k rounded to `dtype`, and 2**-k (which undoes the scaling exactly).

    Values that would be subnormal are flushed to zero here, or with `round_up` (for a
    nonnegative bound's coefficients) raised to the smallest normal, so that what the hardware
    multiplies is exactly what the bound accounts for, whether it keeps subnormals or not.
    """
    largest = float(matrix.abs().max())
    exponent = 0 if largest == 0 else HALF_MAX_EXPONENT - int(np.ceil(np.log2(largest)))
    scaled = matrix.double() * 2.0**exponent
    smallest = torch.finfo(dtype).tiny
    if round_up:
        half = torch.where((scaled > 0) & (scaled < smallest), smallest, scaled).to(dtype)
        below = half.double() < scaled
        # Round to nearest is less than one step off: one step up is above.
        bits = half[below].view(torch.int16) + 1
        half[below] = bits.view(dtype)
    else:
        half = torch.where(scaled.abs() < smallest, 0.0, scaled).to(dtype)
    return half, 2.0**-exponent


@functools.cache
def _compiled() -> Any:
    """The Triton kernel, decorated on first use: TRITON_INTERPRET is read when it is."""
    import triton
    from bandfusion.models import fused_labels

    return triton.jit(fused_labels.fused_labels, do_not_specialize=["n_pixels", "stride"])
