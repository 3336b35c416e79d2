"""The CUDA engine: maps bit-identical to the CPU's, from any number of threads, in any dtype.

Run with `pytest -m gpu`; every test here skips where torch sees no CUDA device.
"""

from __future__ import annotations

import pickle
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from bandfusion.engine import guard
from bandfusion.engine.cuda import CudaRunner, DeviceKernels
from bandfusion.engine.kernels import kernel_plan
from bandfusion.engine.predict import predict_proba_scene, predict_scene
from bandfusion.errors import BandfusionWarning
from bandfusion.models import triton_kernel
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.inference import CUDA_SUB_BATCH_PIXELS, TorchKernel
from bandfusion.models.triton_kernel import FusedTritonClassifier, triton_available

from tests.nets import exact_logits, make_net

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def near_ties(pixels: int, seed: int = 0) -> tuple[SpectralFusionNet, torch.Tensor]:
    """A net whose two classes nearly tie on most pixels, and uint16 pixels for it.

    Many labels then hang on the last bits of the logits, which the GPU and the CPU round
    differently: a map that stays bit-identical here was certified, not lucky.
    """
    net = make_net(in_bands=6, n_classes=2, seed=seed, hidden=(64, 64), norm="none")
    last = net.convs[-1]
    with torch.no_grad():
        last.weight[1] = last.weight[0] + torch.randn_like(last.weight[0]) * 1e-6
        last.bias[1] = last.bias[0]
    generator = torch.Generator().manual_seed(seed)
    table = torch.randint(0, 4000, (6, pixels), generator=generator, dtype=torch.int32)
    return net, table.to(torch.uint16).T


def test_certified_labels_equal_the_cpu_kernel_where_raw_gpu_labels_do_not() -> None:
    net, table = near_ties(1 << 20)
    cpu = TorchKernel.from_net(net).classify(table).numpy()
    gpu = TorchKernel.from_net(net, device="cuda")
    raw = gpu.classify(table.to(torch.int32).cuda()).cpu().numpy()
    certified = runner(net).classify(table)
    assert (raw != cpu).any(), "these near-ties should split GPU and CPU rounding"
    np.testing.assert_array_equal(certified, cpu)


def test_without_triton_the_runner_certifies_the_torch_kernels_labels(monkeypatch) -> None:
    monkeypatch.setattr(triton_kernel, "triton_available", lambda: False)
    net, table = near_ties(1 << 16, seed=4)
    used = runner(net)
    np.testing.assert_array_equal(used.classify(table), TorchKernel.from_net(net).classify(table))
    assert DeviceKernels.of(TorchKernel.from_net(net, device="cuda")).fused is None


@pytest.mark.skipif(not triton_available(), reason="needs Triton")
@pytest.mark.parametrize("hidden", [(64, 64), (32, 16, 8), (128,)])
def test_the_fused_kernels_bound_holds_on_the_gpus_tensor_cores(hidden) -> None:
    """The accumulation model behind the fp16 bound, checked on the hardware: over a million
    pixels the logits stay within it of float64's, and the labels it clears are the CPU's."""
    net = make_net(in_bands=12, n_classes=10, seed=len(hidden), hidden=hidden)
    generator = torch.Generator().manual_seed(0)
    table = torch.randint(0, 20000, (1 << 20, 12), generator=generator).to(torch.uint16)
    classifier = FusedTritonClassifier.from_kernel(
        TorchKernel.from_net(net, device="cuda"), dtype=torch.float16, certify=True
    )
    bits = table.T.contiguous().view(torch.int16).cuda()
    logits, bound = classifier.logits_and_bound(bits, unsigned=True)
    labels, doubt = classifier.classify(bits, unsigned=True)
    exact = exact_logits(net, table.int())
    assert ((logits.cpu().double() - exact).abs().amax(dim=1) <= bound.cpu()).all()
    clear = ~doubt.cpu().numpy()
    cpu = TorchKernel.from_net(net).classify(table).numpy()
    np.testing.assert_array_equal(labels.cpu().numpy()[clear], cpu[clear])
    assert clear.mean() > 0.5


def runner(net: SpectralFusionNet) -> CudaRunner:
    """The engine's runner for `net`: fp32 on the GPU, doubtful labels recomputed on the CPU."""
    on_gpu = TorchKernel.from_net(net, sub_batch=CUDA_SUB_BATCH_PIXELS)
    return CudaRunner(on_gpu, TorchKernel.from_net(net), torch.device("cuda"))


def test_many_threads_share_the_runner_and_get_the_cpu_labels() -> None:
    net, table = near_ties(1 << 18, seed=1)
    cpu = TorchKernel.from_net(net).classify(table).numpy()
    shared = runner(net)
    parts = np.array_split(np.arange(len(table)), 8)
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        for _ in range(3):  # reuses the thread's stream and pinned buffers
            part = parts[index]
            results[index] = shared.classify(table[part[0] : part[-1] + 1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(parts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(np.concatenate([results[i] for i in range(8)]), cpu)


def test_a_runner_dropped_stops_its_consumer_thread() -> None:
    net, table = near_ties(4096, seed=3)
    before = threading.active_count()
    used = runner(net)
    used.classify(table)
    del used
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_runner_pickles_without_its_streams() -> None:
    net, table = near_ties(4096, seed=2)
    original = runner(net)
    original.classify(table)
    copy = pickle.loads(pickle.dumps(original))
    np.testing.assert_array_equal(copy.classify(table), original.classify(table))


def test_cuda_scene_map_is_bit_identical_for_every_chunking(scene, model) -> None:
    cpu = predict_scene(scene, model, device="cpu").values
    for chunks in ({"y": -1, "x": -1}, {"y": 100, "x": 37}):
        gpu = predict_scene(scene.chunk(chunks), model, device="cuda").values
        np.testing.assert_array_equal(gpu, cpu)


def test_cuda_probabilities_agree_with_the_cpu(scene, model) -> None:
    cpu = predict_proba_scene(scene, model, device="cpu").values
    gpu = predict_proba_scene(scene, model, device="cuda").values
    np.testing.assert_allclose(gpu, cpu, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_maps_keep_almost_every_label(scene, model, precision) -> None:
    cpu = predict_scene(scene, model, device="cpu").values
    half = predict_scene(scene, model, device="cuda", precision=precision).values
    assert (half == cpu).mean() >= 0.999


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_guard_trusts_this_cards_kernels(scene, model, precision, monkeypatch) -> None:
    """On real hardware the planned kernel passes its check unwarned, and keeps running."""
    monkeypatch.setattr(guard, "_CHOSEN", {})
    cpu = predict_scene(scene, model, device="cpu").values
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandfusionWarning)
        gpu = predict_scene(scene, model, device="cuda", precision=precision).values
    assert list(guard._CHOSEN.values()) == [kernel_plan(model, "cuda").kernel]
    if precision == "fp32":
        np.testing.assert_array_equal(gpu, cpu)
