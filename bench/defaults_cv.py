"""Cross-validated accuracy of fusion-net recipes against scikit-learn baselines, inside
training pixels only, and the inference cost of ensemble members (issue 17).

`python -m bench.defaults_cv [--sets spain,spain-s1,slovenia,safe] [--methods ...]` holds out
a fixed 30 % of each set's spatial blocks (never read), runs 3-fold spatial-block CV on the
rest, and prints mean macro-F1 and accuracy per method with the paired difference to the
random forest ("spain-s1": the same chip's Sentinel-1 VV/VH; "svm-rbf": scikit-learn's SVC
with its defaults after standardisation, as the accuracy suite runs it).
`--speed` times the folded CPU kernel per number of members, against k=1 in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
import torch
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.inference import TorchKernel
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SAFE = Path("/work/shared/data/s2_l2a_safe")  # the shared real data (its README.md)
SAFE_BANDS = "*.SAFE/GRANULE/*/IMG_DATA/R60m/*.jp2"
SCL_CLASSES = {3: 0, 4: 1, 5: 2, 6: 3, 8: 4, 9: 4, 10: 5}  # shadow, veg, bare, water, cloud, cirrus


def _read(path: str) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _table(image: np.ndarray, labels: np.ndarray, valid: np.ndarray, block: int):
    rows, cols = np.nonzero(valid)
    groups = (rows // block) * 10_000 + cols // block
    return image[:, rows, cols].T.astype(np.float32), labels[rows, cols], groups


def _sen1floods11(sensor: str):
    image = _read(f"data/sen1floods11_spain/Spain_7370579_{sensor}Hand.tif")
    labels = _read("data/sen1floods11_spain/Spain_7370579_LabelHand.tif")[0]
    valid = (labels >= 0) & (image != 0).all(0) & np.isfinite(image).all(0)
    return _table(image, labels, valid, 64)


def spain():
    return _sen1floods11("S2")


def spain_s1():
    """The same chip's Sentinel-1 VV and VH backscatter (dB) with the same labels."""
    return _sen1floods11("S1")


def slovenia():
    image = _read("data/eolearn_slovenia/ndvi_stack.tif")
    labels = _read("data/eolearn_slovenia/lulc.tif")[0]
    return _table(image, labels, labels > 0, 16)


def safe():
    files = sorted(SAFE.glob(SAFE_BANDS))
    image = np.concatenate([_read(str(f)) for f in files if "SCL" not in f.name])
    scl = _read(str(next(f for f in files if "SCL" in f.name)))[0]
    labels = np.full(scl.shape, -1, np.int64)
    for code, label in SCL_CLASSES.items():
        labels[scl == code] = label
    return _table(image, labels, (labels >= 0) & (image != 0).all(0), 32)


SETS: dict[str, Callable] = {
    "spain": spain,
    "spain-s1": spain_s1,
    "slovenia": slovenia,
    "safe": safe,
}

BALANCED = {"class_weight": "balanced"}
CANDIDATES: dict[str, dict] = {
    "fusion-default": {**BALANCED, "search": False},
    "fusion-k4": {**BALANCED, "search": False, "members": 4},
    "fusion-k4-narrow": {**BALANCED, "search": False, "members": 4, "hidden": (32, 32)},
    "fusion-regularised": {**BALANCED, "search": False, "dropout": 0.3, "weight_decay": 1e-2},
    "fusion-wide": {
        **BALANCED,
        "search": False,
        "hidden": (256, 256),
        "dropout": 0.2,
        "weight_decay": 1e-3,
    },
    "fusion-binned": {
        **BALANCED,
        "search": False,
        "bins": 16,
        "dropout": 0.5,
        "weight_decay": 1e-2,
    },
    "fusion-cv": {**BALANCED, "search": True},  # the search's two best blended (the default)
    "fusion-cv-alone": {**BALANCED, "search": True, "blend": 1},  # the search's best alone
}


def _method(name: str, seed: int):
    if name == "random-forest":
        return RandomForestClassifier(n_jobs=1, random_state=seed)
    if name == "hist-gb":
        return HistGradientBoostingClassifier(random_state=seed)
    if name == "svm-rbf":
        return make_pipeline(StandardScaler(), SVC(random_state=seed))
    return SpectralFusionClassifier(random_state=seed, **CANDIDATES[name])


def _cap(y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most `cap` random rows of each class (stratified subsample of a training fold)."""
    rows = [rng.permutation(np.flatnonzero(y == c))[:cap] for c in np.unique(y)]
    return np.sort(np.concatenate(rows))


def cross_validate(name: str, methods: list[str], cap: int, seed: int = 0) -> None:
    """CV scores of `methods` on set `name`; `seed` seeds the methods and the fold samples,
    while the held-out blocks are always seed 0's, so no seed reads another's held-out pixels."""
    x, y, groups = SETS[name]()
    blocks = np.unique(groups)
    rng, held_out = np.random.default_rng(seed), np.random.default_rng(0)
    # Both draw a hold-out, so that seed 0's fold samples are those of runs before --seed.
    rng.choice(blocks, int(0.3 * len(blocks)), replace=False)
    test_blocks = held_out.choice(blocks, int(0.3 * len(blocks)), replace=False)
    inside = ~np.isin(groups, test_blocks)  # the held-out 30 % is never read below
    x, y, groups = x[inside], y[inside], groups[inside]
    print(f"## {name}: {len(y)} training pixels, {x.shape[1]} bands, classes {np.unique(y)}")
    scores: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
    for fold, (train, test) in enumerate(GroupKFold(3).split(x, y, groups)):
        train = train[_cap(y[train], cap, rng)]
        for method in methods:
            start = time.perf_counter()
            predicted = _method(method, seed).fit(x[train], y[train]).predict(x[test])
            f1 = f1_score(y[test], predicted, average="macro")
            acc = accuracy_score(y[test], predicted)
            scores[method].append((f1, acc, time.perf_counter() - start))
            print(f"  fold {fold} {method:16s} macro-F1 {f1:.4f} acc {acc:.4f}", flush=True)
    forest = np.array(scores.get("random-forest", scores[methods[0]]))
    print("| method | macro-F1 | accuracy | Δ macro-F1 vs forest | fit+predict s |")
    print("| --- | --- | --- | --- | --- |")
    for method, rows in scores.items():
        r = np.array(rows)
        print(
            f"| {method} | {r[:, 0].mean():.4f} | {r[:, 1].mean():.4f} | "
            f"{(r[:, 0] - forest[:, 0]).mean():+.4f} | {r[:, 2].mean():.1f} |"
        )


def speed(nets: list[tuple[tuple[int, ...], int]], pixels: int = 1 << 18) -> None:
    """Folded CPU kernel throughput per (hidden, members), as a ratio to the first in the run.

    Rounds alternate between the nets so that all see the same load; each keeps its best.
    """
    table = torch.rand(pixels, 13) * 3000
    kernels = [
        TorchKernel.from_net(SpectralFusionNet(13, 5, hidden, members=k).eval())
        for hidden, k in nets
    ]
    best = [_timed(kernel.classify, table) for kernel in kernels]
    for _ in range(4):
        best = [min(b, _timed(k.classify, table)) for b, k in zip(best, kernels, strict=True)]
    for (hidden, k), seconds in zip(nets, best, strict=True):
        rate = pixels / seconds / 1e6
        print(f"| {hidden} | {k} | {rate:.2f} | {best[0] / seconds:.2f} |", flush=True)


def _timed(fn: Callable, arg: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument(
        "--methods", default="random-forest,hist-gb,svm-rbf," + ",".join(CANDIDATES)
    )
    parser.add_argument("--cap", type=int, default=10_000, help="training pixels per class")
    parser.add_argument("--seed", type=int, default=0, help="of the methods and fold samples")
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args()
    if args.speed:
        print("| hidden | members | Mpx/s | speed vs the first |\n| --- | --- | --- | --- |")
        speed([((64, 64), 1), ((64, 64), 2), ((64, 64), 4), ((32, 32), 4)])
        return
    for name in args.sets.split(","):
        cross_validate(name, args.methods.split(","), args.cap, args.seed)


if __name__ == "__main__":
    main()
