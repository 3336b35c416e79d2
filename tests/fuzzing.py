"""What the fuzz tests of every subject share: hypothesis settings, a fresh directory per
example, the check that only bandfusion's one-line errors escape, untrained models for any band
list, and the CLI run in-process.

Only bandfusion's exceptions may escape, each one line naming the file; the CLI exits 0 or 2
(never 1, an internal error) and leaves nothing at the output path when it fails. The default
run is short and derandomized; `BANDFUSION_FUZZ_EXAMPLES=N` runs every fuzz test with N random
examples: the long pass of docs/hostile-inputs.md.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from bandfusion.cli import main
from bandfusion.errors import BandfusionError
from bandfusion.models.checkpoint import TrainedModel, save_model
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import ModelMetadata
from hypothesis import HealthCheck, event, settings

LONG_PASS = os.environ.get("BANDFUSION_FUZZ_EXAMPLES")


def fuzz(examples: int) -> settings:
    """`examples` derandomized examples by default; BANDFUSION_FUZZ_EXAMPLES=N: N random ones."""
    return settings(
        max_examples=int(LONG_PASS) if LONG_PASS else examples,
        derandomize=not LONG_PASS,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


MAX_FUZZ_BANDS = 2048
"""Mutated headers can claim up to 65535 bands; GDAL then retries a corrupt strip once per
band (~2 ms each), so scenes with more bands are opened but not computed."""
MAX_FUZZ_PIXELS = 1 << 20
"""Bigger (mutated) scenes are computed on a 64 x 64 corner; the CLI is not run on them."""

_names = itertools.count()


@contextlib.contextmanager
def case_dir(scratch: Path) -> Iterator[Path]:
    """A fresh directory per example (GDAL and the scene reader cache handles by path)."""
    directory = scratch / f"case{next(_names)}"
    directory.mkdir()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def check_ours(exc: BaseException, path: Path) -> None:
    """Re-raise anything but a BandfusionError; ours must be one line naming `path`."""
    if not isinstance(exc, BandfusionError):
        raise exc
    message = str(exc)
    assert "\n" not in message, message
    assert str(path) in message, message
    event(f"{type(exc).__name__}: {problem(message, path)}")


def problem(message: str, path: Path) -> str:
    """The kind of problem a message names: without the path, GDAL's reason or numbers."""
    text = message.replace(str(path), "PATH").split(" (")[0].split(", got ")[0]
    return re.sub(r"-?\d[\d,.e+-]*", "N", text)[:90]


_models: dict[tuple[tuple[str, ...], tuple[int, ...]], TrainedModel] = {}
_model_dirs: dict[tuple[str, ...], Path] = {}


def model_for(bands: list[str], class_ids: tuple[int, ...] = (0, 1, 2)) -> TrainedModel:
    """An untrained model taking exactly `bands` (built, not trained: any band count is cheap)."""
    key = (tuple(bands), class_ids)
    if key not in _models:
        torch.manual_seed(len(bands))
        net = SpectralFusionNet(len(bands), len(class_ids), hidden=(4,))
        meta = ModelMetadata(
            bands=list(bands),
            class_ids=list(class_ids),
            class_names=[f"class {c}" for c in class_ids],
            class_colors=[(37 * i % 256, 90, 200) for i in range(len(class_ids))],
            architecture=net.config(),
        )
        _models[key] = TrainedModel(net.eval(), meta)
    return _models[key]


def model_dir_for(bands: list[str], scratch: Path) -> Path:
    """`model_for(bands)` saved once under `scratch`, for the CLI."""
    key = tuple(bands)
    if key not in _model_dirs:
        _model_dirs[key] = save_model(model_for(bands), scratch / f"model{next(_names)}")
    return _model_dirs[key]


def run_cli(args: list[str]) -> tuple[int, str]:
    """The `bandfusion` entry point in-process: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, err.getvalue()
