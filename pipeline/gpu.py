"""The fused kernel on a CUDA device, fed by every dask worker thread at once.

Each thread decodes its chunk on the CPU and then runs the GPU on its own stream, through its own
pinned buffers: while one thread's pixels are being copied or computed, the others decode, so
reads, transfers and compute overlap with a queue as deep as the thread pool. Pixels travel in
the scene's own dtype (uint16: half the bytes of float32) and are cast on the device; labels come
back as one byte a pixel. fp32 labels that another fp32 evaluation could change (see
`bandfusion.models.certify`) are recomputed by the CPU kernel, so the map is bit-identical to a
CPU run's.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from bandfusion.models.inference import FusedKernel

UNSIGNED_CARRIERS = {
    torch.uint16: (torch.int16, torch.int32, 0xFFFF),
    torch.uint32: (torch.int32, torch.int64, 0xFFFFFFFF),
}
"""Unsigned dtypes that torch's CUDA kernels barely support: the bits travel as the signed type of
the same width and are widened and masked back to their values on the device."""


class CudaRunner:
    """`classify` and `proba` of a CUDA kernel over host (M, C) tables; safe from many threads.

    `reference` is the CPU fp32 kernel that recomputes doubtful labels (None: no recomputing,
    for bf16 and fp16 kernels, whose labels are approximate by choice).
    """

    def __init__(self, kernel: FusedKernel, reference: FusedKernel | None) -> None:
        self.kernel = kernel
        self.reference = reference
        # Class indices come back in one byte when they fit.
        self.index_dtype = torch.uint8 if kernel.n_classes <= 256 else torch.int32
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        """Streams and pinned buffers stay with the process that made them."""
        return {"kernel": self.kernel, "reference": self.reference}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.kernel, self.reference = state["kernel"], state["reference"]
        self.index_dtype = torch.uint8 if self.kernel.n_classes <= 256 else torch.int32
        self._local = threading.local()

    def classify(self, table: torch.Tensor) -> np.ndarray:
        """(M, C) host pixels → (M,) class indices, the CPU kernel's wherever it is fp32."""
        stream = self._stream()
        with torch.cuda.stream(stream):
            pixels = self._upload(table)
            if self.reference is None:
                labels = self.kernel.classify(pixels)
                host = self._download(labels.to(self.index_dtype), "labels")
                stream.synchronize()
                return host.astype(np.int64)
            labels, doubt = self.kernel.classify_with_doubt(pixels)
            host = self._download(labels.to(self.index_dtype), "labels")
            doubtful = self._download(doubt, "doubt")
            stream.synchronize()
            result = host.astype(np.int64)
            recompute = np.flatnonzero(doubtful)
        if len(recompute):
            again = torch.from_numpy(recompute)
            result[recompute] = self.reference.classify(table[again]).numpy()
        return result

    def proba(self, table: torch.Tensor) -> np.ndarray:
        """(M, C) host pixels → (M, K) float32 probabilities."""
        stream = self._stream()
        with torch.cuda.stream(stream):
            probabilities = self.kernel.proba(self._upload(table))
            host = self._download(probabilities, "proba")
            stream.synchronize()
            return host.copy()

    def _stream(self) -> torch.cuda.Stream:
        """This thread's stream, made on first use."""
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = torch.cuda.Stream(self.kernel.device)
        return stream

    def _upload(self, table: torch.Tensor) -> torch.Tensor:
        """The (M, C) table on the device, through this thread's pinned buffer, without blocking.

        Tables are band-major views ((C, M) in memory), so they are copied as such.
        """
        bands_major = table.T.contiguous()
        carrier = UNSIGNED_CARRIERS.get(bands_major.dtype)
        if carrier is not None:
            bands_major = bands_major.view(carrier[0])
        staged = self._pinned("upload", bands_major.shape, bands_major.dtype)
        staged.copy_(bands_major)
        on_device = staged.to(self.kernel.device, non_blocking=True)
        if carrier is not None:
            on_device = on_device.to(carrier[1]).bitwise_and_(carrier[2])
        return on_device.T

    def _download(self, tensor: torch.Tensor, role: str) -> np.ndarray:
        """A non-blocking copy of `tensor` into this thread's pinned buffer for `role`.

        Valid once the thread's stream is synchronised, and until its next call.
        """
        host = self._pinned(role, tensor.shape, tensor.dtype)
        host.copy_(tensor, non_blocking=True)
        return host.numpy()

    def _pinned(self, role: str, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
        """A pinned host tensor of `shape` for `role`, reusing this thread's buffer when it fits.

        Pinning is slow (a page-locking system call), so buffers only ever grow.
        """
        buffers: dict[str, torch.Tensor] = self._local.__dict__.setdefault("buffers", {})
        needed = int(np.prod(shape)) * dtype.itemsize
        buffer = buffers.get(role)
        if buffer is None or buffer.numel() < needed:
            buffer = buffers[role] = torch.empty(needed, dtype=torch.uint8, pin_memory=True)
        return buffer[:needed].view(dtype).view(shape)
