"""The fused kernel on a CUDA device: dask's threads produce pixels, one GPU thread consumes them.

Every dask worker thread decodes its chunk on the CPU, stages its valid pixels into a pinned
buffer and queues them; a single consumer thread owns the device, uploads each table without
blocking, runs the kernel and copies the labels back. Reads, transfers and compute overlap, the
queue is bounded by the pinned buffers (back-pressure, bounded memory), and only one thread pays
for a cuBLAS handle. The consumer starts when the runner is made, so CUDA's start-up (context,
weights, cuBLAS; about half a second on an H200 machine) overlaps the first reads.

Pixels travel in the scene's own dtype (uint16: half the bytes of float32) and are cast on the
device; labels come back as one byte a pixel. fp32 labels that another fp32 evaluation could
change (see `bandfusion.models.certify`) are recomputed by the CPU kernel in the producing
thread, so the map is bit-identical to a CPU run's.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
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

STAGING_BUFFERS = 4
"""Pinned input buffers: tables staged ahead of the GPU. The GPU takes about a millisecond for a
million pixels, so a few hide every transfer; more only pin more memory."""

Job = tuple[
    Callable[["FusedKernel", torch.Tensor], tuple[np.ndarray, ...]],  # run on the device
    torch.Tensor,  # the pinned buffer, back to the pool once uploaded
    torch.Tensor,  # the staged (C, M) pixels in it
    tuple[torch.dtype, torch.dtype, int] | None,  # their unsigned carrier, if any
    Future[tuple[np.ndarray, ...]],
]


class CudaRunner:
    """`classify` and `proba` of a kernel on `device` over host (M, C) tables, from any thread.

    `kernel` may live on the CPU: the consumer moves it. `reference` is the CPU fp32 kernel
    that recomputes doubtful labels (None: bf16 and fp16 kernels, approximate by choice, and
    fp32 kernels of networks the bound does not cover).
    """

    def __init__(
        self, kernel: FusedKernel, reference: FusedKernel | None, device: torch.device
    ) -> None:
        self.kernel = kernel
        self.reference = reference
        self.device = device
        self.index_dtype = torch.uint8 if kernel.n_classes <= 256 else torch.int32
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._staging: queue.Queue[torch.Tensor] = queue.Queue()
        for _ in range(STAGING_BUFFERS):
            self._staging.put(torch.empty(0, dtype=torch.uint8))
        self._started = threading.Event()
        consumer = threading.Thread(
            target=_consume,
            args=(self._jobs, self._staging, kernel, device, self._started),
            name="bandfusion-cuda",
            daemon=True,
        )
        consumer.start()
        # The consumer holds no reference to the runner: when the runner goes, so does it.
        weakref.finalize(self, self._jobs.put, None)

    def __getstate__(self) -> dict[str, Any]:
        """The kernels travel; the consumer thread and its buffers stay with their process."""
        return {"kernel": self.kernel, "reference": self.reference, "device": self.device}

    def __setstate__(self, state: dict[str, Any]) -> None:
        CudaRunner.__init__(self, state["kernel"], state["reference"], state["device"])

    def classify(self, table: torch.Tensor) -> np.ndarray:
        """(M, C) host pixels → (M,) class indices, the CPU kernel's wherever it is fp32."""
        certify = self.reference is not None
        labels, doubtful = self._submit(partial(_classify, self.index_dtype, certify), table)
        result = labels.astype(np.int64)
        recompute = np.flatnonzero(doubtful)
        if self.reference is not None and len(recompute):
            again = torch.from_numpy(recompute)
            result[recompute] = self.reference.classify(table[again]).numpy()
        return result

    def proba(self, table: torch.Tensor) -> np.ndarray:
        """(M, C) host pixels → (M, K) float32 probabilities."""
        (probabilities,) = self._submit(_proba, table)
        return probabilities

    def _submit(
        self,
        work: Callable[[FusedKernel, torch.Tensor], tuple[np.ndarray, ...]],
        table: torch.Tensor,
    ) -> tuple[np.ndarray, ...]:
        """Stage `table` in a free pinned buffer (waiting for one), queue it, await the result."""
        bands_major = table.T.contiguous()
        carrier = UNSIGNED_CARRIERS.get(bands_major.dtype)
        if carrier is not None:
            bands_major = bands_major.view(carrier[0])
        needed = bands_major.numel() * bands_major.element_size()
        buffer = self._staging.get()
        if buffer.numel() < needed:
            self._started.wait()  # pin once CUDA is up, not while it starts
            buffer = torch.empty(needed, dtype=torch.uint8, pin_memory=True)
        staged = buffer[:needed].view(bands_major.dtype).view(bands_major.shape)
        staged.copy_(bands_major)
        done: Future[tuple[np.ndarray, ...]] = Future()
        self._jobs.put((work, buffer, staged, carrier, done))
        return done.result()


def _consume(
    jobs: queue.Queue[Job | None],
    staging: queue.Queue[torch.Tensor],
    kernel: FusedKernel,
    device: torch.device,
    started: threading.Event,
) -> None:
    """The GPU thread: start CUDA, then run queued jobs one after another until told to stop.

    A failure to start is every job's failure, so no producer waits forever.
    """
    failure: BaseException | None = None
    try:
        on_device = kernel.to(device)
        on_device.classify(torch.zeros((1, kernel.in_bands), device=device))  # cuBLAS up
        stream = torch.cuda.Stream(device)
    except BaseException as error:  # handed to every job's producer
        failure = error
    finally:
        started.set()
    while (job := jobs.get()) is not None:
        work, buffer, staged, carrier, done = job
        returned = False
        try:
            if failure is not None:
                raise failure
            with torch.cuda.stream(stream):
                pixels = staged.to(device, non_blocking=True)
                stream.synchronize()
                staging.put(buffer)  # free for the next producer while this one computes
                returned = True
                if carrier is not None:
                    pixels = pixels.to(carrier[1]).bitwise_and_(carrier[2])
                done.set_result(work(on_device, pixels.T))
        except BaseException as error:  # re-raised in the producer's thread
            done.set_exception(error)
        finally:
            if not returned:
                staging.put(buffer)


def _classify(
    index_dtype: torch.dtype, certify: bool, kernel: FusedKernel, pixels: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Class indices in `index_dtype` and, when certifying, the doubtful mask, on the host."""
    if not certify:
        labels = kernel.classify(pixels)
        return labels.to(index_dtype).cpu().numpy(), np.zeros(0, dtype=bool)
    labels, doubt = kernel.classify_with_doubt(pixels)
    return labels.to(index_dtype).cpu().numpy(), doubt.cpu().numpy()


def _proba(kernel: FusedKernel, pixels: torch.Tensor) -> tuple[np.ndarray]:
    return (kernel.proba(pixels).cpu().numpy(),)
