"""The fused kernel on a CUDA device: dask's threads produce pixels, one GPU thread consumes them.

Every dask worker thread decodes its chunk on the CPU, stages its valid pixels into a pinned
buffer and queues them; a single consumer thread owns the device, uploads each table without
blocking, runs the kernel and copies the labels back. Reads, transfers and compute overlap, the
queue is bounded by the pinned buffers (back-pressure, bounded memory), and only one thread pays
for a cuBLAS handle. The consumer starts when the runner is made, so CUDA's start-up (context,
weights, cuBLAS) overlaps the first reads.

Pixels travel in the scene's own dtype (uint16: half the bytes of float32) and are cast on the
device; labels come back as one byte a pixel. Where Triton runs the network, the consumer runs it
as one fused kernel (`bandfusion.models.triton_kernel`), else as the torch kernel.

fp32 labels are certified (see `bandfusion.models.certify`) in a cascade: the fused kernel runs
in fp16 with its bound, the torch kernel recomputes in fp32 the few labels that bound leaves in
doubt, with its own, tighter bound, and the CPU kernel in the producing thread the very few left.
So the map is bit-identical to a CPU run's at about the fused kernel's speed.

Which of the device's kernels runs is the guard's choice (`bandfusion.engine.guard`): `labels`
runs one of them alone, for it to check. On a CPU device (the tests, with Triton's interpreter)
the same consumer thread runs without streams or pinned memory.
"""

from __future__ import annotations

import queue
import threading
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from bandfusion.errors import BandfusionWarning, first_line
from bandfusion.models.inference import TorchKernel
from bandfusion.models.triton_kernel import FusedTritonClassifier, unsupported

UNSIGNED_CARRIERS = {
    torch.uint16: (torch.int16, torch.int32, 0xFFFF),
    torch.uint32: (torch.int32, torch.int64, 0xFFFFFFFF),
}
"""Unsigned dtypes that torch's CUDA kernels barely support: the bits travel as the signed type of
the same width and are widened and masked back to their values on the device."""

RECHECK_SUB_BATCH = 1 << 14
"""Rows of the torch kernel's GEMMs when it rechecks the fused kernel's doubtful labels (a small
share of a chunk): its bound certifies whatever the row count, so they need no whole sub-batch."""

STAGING_BUFFERS = 4
"""Pinned input buffers: tables staged ahead of the GPU. The GPU classifies a chunk far faster than
threads decode one, so a few hide every transfer; more only pin more memory."""

Carrier = tuple[torch.dtype, torch.dtype, int]

FUSED, TORCH = "fused", "torch"
"""The device's kernels, in the order the engine prefers them: the fused Triton kernel (with the
torch kernel rechecking its doubtful labels), then the torch kernel alone."""


@dataclass(frozen=True)
class DeviceKernels:
    """What the consumer thread runs: the torch kernel on the device and, where Triton runs
    this network, its fused form and the torch kernel that rechecks its doubtful labels."""

    torch: TorchKernel
    fused: FusedTritonClassifier | None = None
    recheck: TorchKernel | None = None

    @classmethod
    def of(cls, kernel: TorchKernel) -> DeviceKernels:
        """The kernels for `kernel` (on its GPU), the fused one compiled now if it can be."""
        fused = _fused(kernel)
        recheck = kernel.with_sub_batch(RECHECK_SUB_BATCH) if fused else None
        return cls(kernel, fused, recheck)

    @property
    def names(self) -> list[str]:
        """The kernels held, best first: `FUSED` (if built), then `TORCH`."""
        return [FUSED, TORCH] if self.fused is not None else [TORCH]

    def only(self, name: str) -> DeviceKernels:
        """These kernels as the one named runs them: `TORCH` drops the fused kernel."""
        return self if name == FUSED else DeviceKernels(self.torch)


Work = Callable[[DeviceKernels, torch.Tensor, Carrier | None], tuple[np.ndarray, ...]]
Job = tuple[
    Work,  # run on the device, given the (C, M) pixels there and their carrier
    torch.Tensor,  # the pinned buffer, back to the pool once uploaded
    torch.Tensor,  # the staged (C, M) pixels in it
    Carrier | None,  # their unsigned carrier, if any
    Future[tuple[np.ndarray, ...]],
]


class CudaRunner:
    """`classify` and `proba` of a kernel on `device` over host (M, C) tables, from any thread.

    `kernel` may live on the CPU: the consumer moves it. `reference` is the CPU fp32 kernel
    that recomputes doubtful labels (None: bf16 and fp16 kernels, approximate by choice, and
    fp32 kernels of networks the bound does not cover). `classify` runs the kernel named by
    `use` (default: the best built).
    """

    def __init__(
        self, kernel: TorchKernel, reference: TorchKernel | None, device: torch.device
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
        self._names: list[str] = []  # filled by the consumer, once started
        self._chosen: str | None = None
        consumer = threading.Thread(
            target=_consume,
            args=(self._jobs, self._staging, kernel, device, self._started, self._names),
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

    @property
    def names(self) -> list[str]:
        """The device kernels built, best first (`FUSED`, `TORCH`); waits for CUDA to start.

        A start that failed leaves `TORCH`, whose every call then raises the failure.
        """
        self._started.wait()
        return self._names or [TORCH]

    def use(self, name: str) -> None:
        """Run the device kernel `name` (one of `names`) from now on."""
        self._chosen = name

    def labels(self, table: torch.Tensor, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(M, C) host pixels → (M,) class indices and (M,) bool doubt of the device kernel
        `name`, as it gives them: nothing is recomputed on the CPU (no doubt: all False)."""
        certify = self.reference is not None
        labels, doubt = self._submit(partial(_classify, self.index_dtype, certify, name), table)
        return labels, doubt if certify else np.zeros(len(labels), dtype=bool)

    def classify(self, table: torch.Tensor) -> np.ndarray:
        """(M, C) host pixels → (M,) class indices, the CPU kernel's wherever it is fp32."""
        labels, doubtful = self.labels(table, self._chosen or self.names[0])
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

    def _submit(self, work: Work, table: torch.Tensor) -> tuple[np.ndarray, ...]:
        """Stage `table` in a free pinned buffer (waiting for one), queue it, await the result."""
        bands_major = table.T.contiguous()
        carrier = UNSIGNED_CARRIERS.get(bands_major.dtype)
        if carrier is not None:
            bands_major = bands_major.view(carrier[0])
        needed = bands_major.numel() * bands_major.element_size()
        buffer = self._staging.get()
        if buffer.numel() < needed:
            self._started.wait()  # pin once CUDA is up, not while it starts
            pin = self.device.type == "cuda"
            buffer = torch.empty(needed, dtype=torch.uint8, pin_memory=pin)
        staged = buffer[:needed].view(bands_major.dtype).view(bands_major.shape)
        staged.copy_(bands_major)
        done: Future[tuple[np.ndarray, ...]] = Future()
        self._jobs.put((work, buffer, staged, carrier, done))
        return done.result()


def _consume(
    jobs: queue.Queue[Job | None],
    staging: queue.Queue[torch.Tensor],
    kernel: TorchKernel,
    device: torch.device,
    started: threading.Event,
    names: list[str],
) -> None:
    """The GPU thread: start CUDA, then run queued jobs one after another until told to stop.

    A failure to start is every job's failure, so no producer waits forever. `names` receives
    the kernels built.
    """
    failure: BaseException | None = None
    try:
        on_device = kernel.to(device)
        on_device.classify(torch.zeros((1, kernel.in_bands), device=device))  # cuBLAS up
        kernels = DeviceKernels.of(on_device)
        names.extend(kernels.names)
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
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
                pixels = staged.to(device, non_blocking=True, copy=True)  # CPU: not the buffer
                if stream is not None:
                    stream.synchronize()
                staging.put(buffer)  # free for the next producer while this one computes
                returned = True
                done.set_result(work(kernels, pixels, carrier))
        except BaseException as error:  # re-raised in the producer's thread
            done.set_exception(error)
        finally:
            if not returned:
                staging.put(buffer)


def _fused(kernel: TorchKernel) -> FusedTritonClassifier | None:
    """`kernel` as one Triton kernel, compiled now (while the first reads run), if it can be.

    fp32 kernels run fused in fp16 with the certifying bound. Without Triton, or for networks
    it does not cover, None: the torch kernel runs. A compiler failure says so and falls back.
    """
    if unsupported(kernel) is not None:
        return None
    certify = kernel.bound is not None
    dtype = torch.bfloat16 if kernel.precision == "bf16" else torch.float16
    try:
        fused = FusedTritonClassifier.from_kernel(kernel, dtype=dtype, certify=certify)
        # Compiled for uint16 scenes (Sentinel-2, Landsat); other dtypes on their first chunk.
        warm_up = torch.zeros((kernel.in_bands, 1), dtype=torch.int16, device=kernel.device)
        fused.classify(warm_up, unsigned=True)
    except Exception as error:  # a Triton or driver too old for the kernel: run the torch one
        warnings.warn(
            f"the fused Triton kernel failed to build ({first_line(error)}); "
            "running the torch kernel instead",
            BandfusionWarning,
            stacklevel=1,
        )
        return None
    return fused


def _classify(
    index_dtype: torch.dtype,
    certify: bool,
    name: str,
    kernels: DeviceKernels,
    pixels: torch.Tensor,
    carrier: Carrier | None,
) -> tuple[np.ndarray, np.ndarray]:
    """`labels_on_device` of the kernel `name`, copied to the host (no doubt mask when not
    certifying)."""
    labels, doubt = labels_on_device(kernels.only(name), pixels, carrier, index_dtype, certify)
    mask = doubt.cpu().numpy() if certify else np.zeros(0, dtype=bool)
    return labels.cpu().numpy(), mask


def labels_on_device(
    kernels: DeviceKernels,
    pixels: torch.Tensor,
    carrier: Carrier | None,
    index_dtype: torch.dtype,
    certify: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, M) pixels on the device → (M,) class indices and (M,) bool doubt, there.

    The fused kernel's doubtful labels are recomputed by the torch kernel in fp32 with its own
    bound: what it still doubts is left to the caller's CPU reference.
    """
    fused = kernels.fused
    if fused is None or not fused.reads(pixels.dtype):
        table = _widened(pixels, carrier).T
        if not certify:
            labels = kernels.torch.classify(table).to(index_dtype)
            return labels, torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        labels, doubt = kernels.torch.classify_with_doubt(table)
        return labels.to(index_dtype), doubt
    labels, doubt = fused.classify(pixels, unsigned=carrier is not None, label_dtype=index_dtype)
    again = torch.nonzero(doubt).squeeze(1)
    if certify and len(again):
        assert kernels.recheck is not None
        table = _widened(pixels[:, again], carrier).T
        relabelled, doubt[again] = kernels.recheck.classify_with_doubt(table)
        labels[again] = relabelled.to(index_dtype)
    return labels, doubt


def _widened(pixels: torch.Tensor, carrier: Carrier | None) -> torch.Tensor:
    """Carried unsigned pixels back as their values, in the wider signed dtype."""
    return pixels if carrier is None else pixels.to(carrier[1]).bitwise_and_(carrier[2])


def _proba(
    kernels: DeviceKernels, pixels: torch.Tensor, carrier: Carrier | None
) -> tuple[np.ndarray]:
    return (kernels.torch.proba(_widened(pixels, carrier).T).cpu().numpy(),)
