"""The guard: a device's kernels earn their place against the CPU kernel before they label a map.

The fused Triton kernel and the torch kernel on a GPU are fast, but a compiler, a driver or a card
the tests never ran on can get them wrong, and a wrong kernel spoils maps silently. So before the
first chunk is labelled, the engine checks the kernel it would run against the CPU kernel, once
per process for each model, device and precision, on a probe: a few thousand real pixels of that
chunk and edge cases (the dtype's smallest, largest and zero values, every band's nodata
neighbours), indices appended as for any pixel.

A certified kernel (fp32) fails if any label it does not mark doubtful differs from the CPU
kernel's: its bound says that cannot happen. An approximate one (bf16, fp16, networks the bound
does not cover) fails if more than `APPROXIMATE_DISAGREEMENT` of the real pixels' labels differ.
A kernel that fails, or raises, is dropped with one warning and the next one is checked:
fused → torch → CPU.

The CPU kernel is not guarded: it is the reference, and checking it against itself proves
nothing, so CPU runs (bf16 on the CPU included) run unchecked.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from bandfusion.engine.cuda import FUSED, TORCH, CudaRunner
from bandfusion.errors import BandfusionWarning, first_line
from bandfusion.io.nodata import pixel_value, valid_mask
from bandfusion.models.inference import TorchKernel

CPU = "cpu"
KERNEL_NAMES = {FUSED: "fused Triton kernel", TORCH: "torch kernel", CPU: "CPU kernel"}

PROBE_PIXELS = 4096
"""Real pixels in a probe, spread evenly over the first chunk's valid pixels."""

APPROXIMATE_DISAGREEMENT = 0.01
"""The share of real pixels whose labels an approximate kernel may change (at least one): bf16
and fp16 maps keep nearly all of a scene's labels (docs/engine.md)."""

_CHOSEN: dict[tuple[str, ...], str] = {}
"""The kernel chosen in this process, per (model digest, device, precision)."""
_LOCK = threading.Lock()

Probe = Callable[[], tuple[torch.Tensor, int]]
"""The probe's (M, C) table, inputs as the kernels read them, and how many real pixels lead it."""


class KernelGuard:
    """A `CudaRunner` that labels pixels with the first of its kernels to pass the check, and
    the CPU kernel `reference` (fp32, the CPU engine's) that labels them when none does."""

    def __init__(self, runner: CudaRunner, reference: TorchKernel, key: tuple[str, ...]) -> None:
        self.runner = runner
        self.reference = reference
        self.key = key

    def kernel(self, probe: Probe) -> str:
        """The kernel that runs (`FUSED`, `TORCH` or `CPU`), checked on `probe()` the first time
        this process asks for this key: concurrent callers wait for that one check."""
        with _LOCK:
            if self.key not in _CHOSEN:
                _CHOSEN[self.key] = self._choose(*probe())
            name = _CHOSEN[self.key]
        if name != CPU:
            self.runner.use(name)
        return name

    def classify(self, table: torch.Tensor, probe: Probe) -> np.ndarray:
        """(M, C) host pixels → (M,) class indices from the kernel that passed."""
        if self.kernel(probe) == CPU:
            return self.reference.classify(table).numpy()
        return self.runner.classify(table)

    def proba(self, table: torch.Tensor, probe: Probe) -> np.ndarray:
        """(M, C) host pixels → (M, K) probabilities: the device torch kernel's, the CPU kernel's
        where the check fell back to it."""
        if self.kernel(probe) == CPU:
            return self.reference.proba(table).numpy()
        return self.runner.proba(table)

    def _choose(self, table: torch.Tensor, real: int) -> str:
        """The first of the runner's kernels to pass on `table`, warning once for each that
        does not; `CPU` if none does."""
        expected = self.reference.classify(table).numpy()
        names = self.runner.names
        for name, fallback in zip(names, [*names[1:], CPU], strict=True):
            try:
                labels, doubt = self.runner.labels(table, name)
                failure = self._failure(labels.astype(np.int64), doubt, expected, real)
            except Exception as error:  # a kernel that crashes is as untrusted as a wrong one
                failure = f"failed ({first_line(error)})"
            if failure is None:
                return name
            warnings.warn(
                f"the {KERNEL_NAMES[name]} on {self.runner.device} {failure}; "
                f"running the {KERNEL_NAMES[fallback]} instead",
                BandfusionWarning,
                stacklevel=1,
            )
        return CPU

    def _failure(
        self, labels: np.ndarray, doubt: np.ndarray, expected: np.ndarray, real: int
    ) -> str | None:
        """Why these probe labels condemn the kernel, or None if they do not."""
        if len(labels) != len(expected) or (labels >= self.reference.n_classes).any():
            return "gave labels that are not the model's classes"
        if self.runner.reference is not None:
            wrong = int(((labels != expected) & ~doubt).sum())
            if wrong:
                return (
                    f"gave {wrong} of {len(labels)} probe labels that its bound rules out "
                    "(they differ from the CPU kernel's)"
                )
            return None
        differ = int((labels[:real] != expected[:real]).sum())
        if differ > max(1, APPROXIMATE_DISAGREEMENT * real):
            return f"changed {differ} of {real} probe labels from the CPU kernel's"
        return None


def probe_block(block: np.ndarray, nodata: Sequence[float | None]) -> tuple[np.ndarray, int]:
    """A (C, 1, N) block of probe pixels for the (C, h, w) `block`, and how many real pixels
    lead it: up to `PROBE_PIXELS` of its valid ones, then the edge cases (some of which may be
    nodata, and are then dropped as any nodata pixel is)."""
    pixels = block.reshape(len(block), -1)[:, valid_mask(block, nodata).ravel()]
    if pixels.shape[1] > PROBE_PIXELS:
        pixels = pixels[:, np.linspace(0, pixels.shape[1] - 1, PROBE_PIXELS).astype(np.int64)]
    base = pixels[:, 0] if pixels.shape[1] else np.zeros(len(block), block.dtype)
    probe = np.concatenate([pixels, _edge_pixels(base, nodata)], axis=1)
    return probe[:, None, :], pixels.shape[1]


def _edge_pixels(base: np.ndarray, nodata: Sequence[float | None]) -> np.ndarray:
    """(C, E) pixels: each extreme value in every band at once, then in each band alone on the
    `base` pixel, along with that band's nodata neighbours."""
    dtype = base.dtype
    if dtype.kind == "f":
        floats = np.finfo(dtype)
        extremes = [floats.min, floats.max, 0, floats.tiny]
    else:
        integers = np.iinfo(dtype)
        extremes = [integers.min, integers.max, 0]
    columns = [np.full(len(base), value, dtype) for value in extremes]
    for band, value in enumerate(nodata):
        for edge in [*extremes, *_neighbours(dtype, value)]:
            column = base.copy()
            column[band] = edge
            columns.append(column)
    return np.stack(columns, axis=1)


def _neighbours(dtype: np.dtype, value: float | None) -> list[np.generic]:
    """The pixel values of `dtype` just below and above the nodata `value` (none if no pixel
    can hold it)."""
    pixel = pixel_value(dtype, value)
    if pixel is None or np.isnan(pixel):
        return []
    if dtype.kind == "f":
        return [np.nextafter(pixel, dtype.type(-np.inf)), np.nextafter(pixel, dtype.type(np.inf))]
    integers = np.iinfo(dtype)
    whole = int(pixel)
    return [dtype.type(v) for v in (whole - 1, whole + 1) if integers.min <= v <= integers.max]
