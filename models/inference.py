"""The torch kernel: a trained `SpectralFusionNet` folded into a few GEMMs, run by torch.

In eval mode standardisation and batch norm are affine maps next to a linear layer, so they fold
into its weights and bias: each layer becomes one `torch.addmm` (bias fused) and an in-place
activation. Pixels run in sub-batches small enough that every layer's input and output stay in
cache, through output buffers allocated once per call, which keeps the kernel near the GEMM
peak, far above the module's forward over large batches (docs/engine.md).

Every GEMM has the same shape whatever the number of pixels, so a pixel's result does not depend
on how pixels are batched or tiled. They differ from the module's forward only by the
rounding of the folded weights. The kernel knows nothing of files or dask.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from bandfusion.models.certify import (
    FP32_UNIT_ROUNDOFF,
    TF32_UNIT_ROUNDOFF,
    LabelBound,
    doubtful,
    label_bound,
)
from bandfusion.models.folding import folded_layers
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.threads import one_thread_on_cpu
from torch import nn

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

SUB_BATCH_PIXELS = 8192
"""Rows of every GEMM on the CPU: a 64-wide fp32 activation of this many pixels (2 MB) fits L2."""

CUDA_SUB_BATCH_PIXELS = 1 << 20
"""Rows of every GEMM on a GPU: enough work per kernel launch to fill the device."""


def cpu_runs_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 or AMX, as oneDNN needs).

    Without it oneDNN emulates bf16 GEMMs and the kernel runs many times slower than in fp32
    (docs/engine.md). Unknown to this torch: assumed yes.
    """
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return True if probe is None else bool(probe())


@dataclass(frozen=True)
class FoldedLayer:
    """One folded layer: `x @ weight + bias`, then layer norm (if any), then the activation."""

    weight: torch.Tensor  # (c_in, c_out): addmm's right operand, in the layer's dtype
    bias: torch.Tensor  # (c_out,)
    layer_norm: nn.LayerNorm | None
    activation: str | None  # "relu", "gelu", or None for the logits


class TorchKernel:
    """Logits, class indices and probabilities of a folded network over (pixels, bands) tables.

    Inputs are cast and centred in fp32; every layer then runs in `precision`. `clamp` (the
    low and high of each centred band, for a clamped network; None for others) clamps the
    centred bands before the first layer.
    """

    def __init__(
        self,
        layers: list[FoldedLayer],
        band_mean: torch.Tensor,
        precision: Precision,
        device: torch.device,
        sub_batch: int = SUB_BATCH_PIXELS,
        clamp: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.layers = layers
        self.band_mean = band_mean
        self.clamp = clamp
        self.precision = precision
        self.device = device
        self.sub_batch = sub_batch
        self.in_bands = layers[0].weight.shape[0]
        self.n_classes = layers[-1].weight.shape[1]
        self.bound = _label_bound(layers, precision, device)

    @classmethod
    def from_net(
        cls,
        net: SpectralFusionNet,
        *,
        precision: Precision = "fp32",
        device: torch.device | str = "cpu",
        sub_batch: int | None = None,
    ) -> TorchKernel:
        """Fold `net`'s standardisation and eval-mode batch norm into its conv weights.

        Folding is done in float64 and rounded once to the kernel's precision. `sub_batch` is
        the GEMMs' row count (None: the device's default).
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        target = torch.device(device)
        if sub_batch is None:
            sub_batch = CUDA_SUB_BATCH_PIXELS if target.type == "cuda" else SUB_BATCH_PIXELS
        if sub_batch < 1:
            raise ValueError(f"sub_batch must be positive, got {sub_batch}")
        weights, mean = folded_layers(net)
        dtype = _DTYPES[precision]
        clamp = None
        if net.clamped:  # the standardised range in centred units: (x - mean) within std·range
            std = net.band_std.detach().double()
            clamp = (
                (net.band_low.detach().double() * std).to(target, dtype),
                (net.band_high.detach().double() * std).to(target, dtype),
            )
        layers = [
            FoldedLayer(
                weight=weight.T.contiguous().to(target, dtype),
                bias=bias.to(target, dtype),
                layer_norm=_moved(layer_norm, target, dtype),
                activation=activation,
            )
            for weight, bias, layer_norm, activation in weights
        ]
        return cls(layers, mean.to(target, torch.float32), precision, target, sub_batch, clamp)

    def to(self, device: torch.device | str) -> TorchKernel:
        """The same kernel (weights, precision, sub-batch) on `device`."""
        target = torch.device(device)
        layers = [
            FoldedLayer(
                weight=layer.weight.to(target),
                bias=layer.bias.to(target),
                layer_norm=_moved(layer.layer_norm, target, layer.weight.dtype),
                activation=layer.activation,
            )
            for layer in self.layers
        ]
        clamp = None if self.clamp is None else (self.clamp[0].to(target), self.clamp[1].to(target))
        return TorchKernel(
            layers, self.band_mean.to(target), self.precision, target, self.sub_batch, clamp
        )

    def with_sub_batch(self, sub_batch: int) -> TorchKernel:
        """The same kernel (its weights shared) with GEMMs of `sub_batch` rows."""
        return TorchKernel(
            self.layers, self.band_mean, self.precision, self.device, sub_batch, self.clamp
        )

    def logits(self, table: torch.Tensor) -> torch.Tensor:
        """(M, C) pixels on the kernel's device → (M, K) logits in the kernel's precision."""
        dtype = self.layers[-1].weight.dtype
        out = torch.empty((len(table), self.n_classes), dtype=dtype, device=self.device)
        for start, stop, _, logits in self._sub_batches(table):
            out[start:stop] = logits.T
        return out

    def classify(self, table: torch.Tensor) -> torch.Tensor:
        """(M, C) pixels → (M,) int64 index of the largest logit (the first on exact ties)."""
        out = torch.empty(len(table), dtype=torch.int64, device=self.device)
        best = self._zeros((self.sub_batch,), self.layers[-1].weight.dtype)
        for start, stop, _, logits in self._sub_batches(table):
            # torch.max returns the first maximal index on ties, on CPU and CUDA alike.
            torch.max(logits, dim=0, out=(best[: stop - start], out[start:stop]))
        return out

    def classify_with_doubt(self, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`classify`, and a bool (M,) mask of the labels another fp32 evaluation could change.

        Only fp32 kernels of ReLU networks without layer norm carry the bound (`self.bound`).
        A GPU's labels outside the mask are those of the CPU kernel, bit for bit; the engine
        recomputes the rest (a few in a thousand) on the CPU.
        """
        if self.bound is None:
            raise ValueError("this kernel has no label bound: fp32 ReLU networks only")
        labels = torch.empty(len(table), dtype=torch.int64, device=self.device)
        doubt = torch.empty(len(table), dtype=torch.bool, device=self.device)
        for start, stop, inputs, logits in self._sub_batches(table):
            torch.argmax(logits, dim=0, out=labels[start:stop])
            error = self.bound.logit_error(inputs)[: stop - start]
            doubt[start:stop] = doubtful(logits, error)
        return labels, doubt

    def proba(self, table: torch.Tensor) -> torch.Tensor:
        """(M, C) pixels → (M, K) float32 softmax probabilities."""
        return torch.softmax(self.logits(table).float(), dim=1)

    def _sub_batches(
        self, table: torch.Tensor
    ) -> Iterator[tuple[int, int, list[torch.Tensor], torch.Tensor]]:
        """(start, stop, each layer's input, (K, n) logits) per sub-batch, in reused buffers.

        Every GEMM has exactly `sub_batch` rows, the last sub-batch padded: BLAS libraries
        round differently for different row counts, so this is what makes a pixel's logits
        independent of how many pixels came with it. Layer inputs are whole (sub_batch, c_in)
        buffers, padding and all. Every tensor is overwritten by the next sub-batch, so callers
        consume them first.
        """
        if table.ndim != 2 or table.shape[1] != self.in_bands:
            raise ValueError(
                f"expected a (pixels, {self.in_bands}) table, got {tuple(table.shape)}"
            )
        table = table.to(self.device, non_blocking=True)
        dtype = self.layers[0].weight.dtype
        # Band-major, so that the engine's tables (band-major (C, h, w) blocks seen as (M, C))
        # are cast row by row; the first GEMM reads it transposed at no cost.
        centred = self._zeros((self.in_bands, self.sub_batch), dtype)
        band_mean = self.band_mean[:, None]
        clamp = None if self.clamp is None else (self.clamp[0][:, None], self.clamp[1][:, None])
        outputs = [self._output_buffer(layer) for layer in self.layers]
        with torch.inference_mode(), one_thread_on_cpu(self.device):
            for start in range(0, len(table), self.sub_batch):
                stop = min(start + self.sub_batch, len(table))
                # Cast (from uint16, say) and centre in one pass, computed in fp32 and rounded
                # once to the kernel's precision: centred values keep their precision in bf16,
                # raw ones (thousands) would lose whole units.
                torch.sub(table[start:stop].T, band_mean, out=centred[:, : stop - start])
                if clamp is not None:
                    torch.clamp(centred, clamp[0], clamp[1], out=centred)
                inputs = [centred.T]
                for layer, out in zip(self.layers, outputs, strict=True):
                    inputs.append(_apply(layer, inputs[-1], out))
                yield start, stop, inputs[:-1], inputs[-1][:, : stop - start]

    def _output_buffer(self, layer: FoldedLayer) -> torch.Tensor:
        """A layer's output buffer for one sub-batch: (n, c_out), or (K, n) for the logits."""
        c_out = layer.weight.shape[1]
        shape = (c_out, self.sub_batch) if layer.activation is None else (self.sub_batch, c_out)
        return self._zeros(shape, layer.weight.dtype)

    def _zeros(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A buffer of zeros: padding rows must hold numbers, never NaN or denormal garbage."""
        return torch.zeros(shape, dtype=dtype, device=self.device)


def _label_bound(
    layers: list[FoldedLayer], precision: Precision, device: torch.device
) -> LabelBound | None:
    """The rounding bound that certifies fp32 labels, for ReLU layers without layer norm.

    On CUDA, fp32 GEMMs may run in TF32 (`torch.backends.cuda.matmul.allow_tf32`): the bound
    then uses TF32's 11-bit rounding.
    """
    hidden = layers[:-1]
    if precision != "fp32" or any(
        layer.layer_norm is not None or layer.activation != "relu" for layer in hidden
    ):
        return None
    tf32 = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    unit_roundoff = TF32_UNIT_ROUNDOFF if tf32 else FP32_UNIT_ROUNDOFF
    return label_bound(
        [layer.weight for layer in layers], [layer.bias for layer in layers], unit_roundoff
    )


def _apply(layer: FoldedLayer, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """One folded layer on an (n, c_in) sub-batch, written into `out`.

    The logits layer computes (K, n) = Wᵀ·xᵀ: with few classes the GEMM runs faster this
    way round, and the argmax then reads contiguous rows.
    """
    if layer.activation is None:
        return torch.addmm(layer.bias[:, None], layer.weight.T, x.T, out=out)
    y = torch.addmm(layer.bias, x, layer.weight, out=out)
    if layer.layer_norm is not None:
        y = layer.layer_norm(y)
    if layer.activation == "relu":
        return torch.relu_(y)
    if layer.activation == "gelu":
        return F.gelu(y)
    return y


def _moved(
    layer_norm: nn.LayerNorm | None, device: torch.device, dtype: torch.dtype
) -> nn.LayerNorm | None:
    """A copy of `layer_norm` on `device` in `dtype` (the net's own module is left as it is)."""
    return None if layer_norm is None else copy.deepcopy(layer_norm).to(device, dtype)
