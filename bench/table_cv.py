"""Cross-validated error of fusion-net settings on a Statlog-like pixel table, inside its
training rows only (issue 17).

The Statlog Landsat table (3x3 neighbourhoods of 4 bands, 6 classes, a fixed 4,435 / 2,000
split) is not on disk; this cuts tables of the same shape from real data, 6,435 random pixels
each, classes in their natural mix: `--table scl`, 3x3 neighbourhoods of B02, B03, B04 and B8A
of the SAFE sample at 60 m (36 features) with SCL's six classes (`defaults_cv.SCL_CLASSES`);
`--table slovenia`, 3x3 neighbourhoods of 4 dates of the Slovenia NDVI stack with its
land-cover ground truth, which like Statlog's is not a function of the bands. Each seed draws
its own 4,435 / 2,000 split and runs stratified 3-fold CV on the 4,435 only; the 2,000 are
never read.

`python -m bench.table_cv [--table scl] [--seeds 3] [--settings given,binned,search]` prints
one JSON line per fold (test error of each method) and the mean error per method: a candidate
fitted alone, or `search` (the estimator's default: the search, its two best blended) and
`search-alone` (the search's best alone, `blend=1`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.selection import CANDIDATES
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from .defaults_cv import SAFE, SAFE_BANDS, SCL_CLASSES, _read

SEARCHES = {"search": {}, "search-alone": {"blend": 1}}

NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


def scl_table(rows: int = 6435) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels): 3x3 neighbourhoods of 4 SAFE bands around random SCL-labelled
    pixels (labels that are thresholds of bands, as Sen2Cor draws them)."""
    files = {f.name.split("_")[2]: f for f in sorted(SAFE.glob(SAFE_BANDS))}
    image = np.concatenate([_read(str(files[b])) for b in ("B02", "B03", "B04", "B8A")])
    scl = _read(str(files["SCL"]))[0]
    labels = np.full(scl.shape, -1)
    for code, label in SCL_CLASSES.items():
        labels[scl == code] = label
    return _neighbourhoods(image, np.where((image != 0).all(0), labels, -1), rows)


def slovenia_table(rows: int = 6435) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels): 3x3 neighbourhoods of 4 dates of the Slovenia NDVI stack (one a
    season apart) around random pixels of its land-cover ground truth; cultivated land (11
    pixels) is left out, as a fixed split cannot stratify it."""
    image = _read("data/eolearn_slovenia/ndvi_stack.tif")[[10, 25, 40, 55]]
    labels = _read("data/eolearn_slovenia/lulc.tif")[0].astype(np.int64)
    labels[(labels == 0) | (labels == 1) | ~np.isfinite(image).all(0)] = -1
    return _neighbourhoods(image, labels, rows)


def _neighbourhoods(
    image: np.ndarray, labels: np.ndarray, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 neighbourhoods of `image`'s bands around `rows` random pixels with a label
    (>= 0), Statlog's layout: band-major within each of the 9 positions."""
    valid = labels >= 0
    valid[[0, -1], :] = valid[:, [0, -1]] = False  # every neighbourhood inside the image
    r, c = np.nonzero(valid)
    pick = np.random.default_rng(0).choice(len(r), rows, replace=False)
    r, c = r[pick], c[pick]
    features = np.stack([image[:, r + dr, c + dc] for dr, dc in NEIGHBOURS], 1)
    return features.reshape(len(image) * len(NEIGHBOURS), -1).T.astype(np.float32), labels[r, c]


TABLES = {"scl": scl_table, "slovenia": slovenia_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=TABLES, default="scl")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--settings", default=",".join([*CANDIDATES, *SEARCHES]), help="candidates, or search"
    )
    args = parser.parse_args()
    x, y = TABLES[args.table]()
    names = args.settings.split(",")
    errors: dict[str, list[float]] = {name: [] for name in ["random-forest", *names]}
    for seed in range(args.seeds):
        x_train, _, y_train, _ = train_test_split(
            x, y, train_size=4435, test_size=2000, stratify=y, random_state=seed
        )
        folds = StratifiedKFold(3, shuffle=True, random_state=seed).split(x_train, y_train)
        for fold, (fit, score) in enumerate(folds):
            methods = {"random-forest": RandomForestClassifier(n_jobs=1, random_state=seed)}
            for name in names:  # "search": the estimator's default, its search and all
                search = {"search": True, **SEARCHES[name]} if name in SEARCHES else {}
                overrides = {"search": False, **search, **CANDIDATES.get(name, {})}
                methods[name] = SpectralFusionClassifier(random_state=seed, **overrides)
            line: dict[str, float | int] = {"seed": seed, "fold": fold}
            for name, method in methods.items():
                method.fit(x_train[fit], y_train[fit])
                error = 1 - accuracy_score(y_train[score], method.predict(x_train[score]))
                errors[name].append(error)
                line[name] = round(100 * error, 2)
            print(json.dumps(line), flush=True)
    for name, values in errors.items():
        print(f"{name}: mean error {100 * np.mean(values):.2f} % over {len(values)} folds")


if __name__ == "__main__":
    main()
