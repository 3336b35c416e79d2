"""Options shared by several subcommands, so every command spells them the same way."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import xarray as xr
from bandfusion.io.grid import Grid
from bandfusion.io.labels import Labels, read_labels
from bandfusion.io.remote import is_remote
from bandfusion.io.scene import RESAMPLING_METHODS, open_scene
from bandfusion.models.devices import resolve_device

F = TypeVar("F", bound=Callable[..., Any])


class FiniteRange(click.FloatRange):
    """click.FloatRange that also refuses NaN and infinities (NaN passes every bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        return number


POSITIVE = click.IntRange(min=1)
"""Counts that must be at least one: epochs, batch sizes, block edges, repeats, runs."""
CAP = click.IntRange(min=0)
"""Caps where 0 means none."""
SHARE = FiniteRange(0.0, 1.0, max_open=True)
"""A share that may be 0 (nothing held out, no dropout) but never all: [0, 1)."""
OPEN_SHARE = FiniteRange(0.0, 1.0, min_open=True, max_open=True)
"""A share strictly between none and all: (0, 1)."""
RATE = FiniteRange(min=0.0, min_open=True)
"""A positive, finite learning rate."""


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def parse_unlabelled(value: str) -> int | str | None:
    """'auto' → label nodata (else 0); 'none' → every pixel labelled; an integer → that value."""
    lowered = value.strip().lower()
    if lowered in ("auto", "none"):
        return None if lowered == "none" else "auto"
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not auto, none or an integer") from None


def parse_widths(text: str) -> tuple[int, ...]:
    """'128,32,128' → (128, 32, 128); '' or 'none' → () (a linear model)."""
    if text.strip().lower() in ("", "none"):
        return ()
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"layer widths must be positive integers like 64,64: {text}")
    return tuple(int(part) for part in parts)


def parse_names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",")] if value else None


def names_callback(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> list[str] | None:
    """click callback: a comma-separated list of names."""
    return parse_names(value)


def widths_callback(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[int, ...] | None:
    """click callback: '--hidden 128,32,128' → (128, 32, 128); absent stays None."""
    try:
        return None if value is None else parse_widths(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


model_option = click.option(
    "-m",
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Model directory (model.json + weights.safetensors).",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
seed_option = click.option(
    "--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Random seed."
)


def device_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """click callback: a device this machine has, kept as named ('auto' is resolved where the
    model runs, a batch worker perhaps); else the engine's error, shown with the flag's name."""
    if value is not None:
        resolve_device(value)
    return value


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    callback=device_callback,
    help="auto (CUDA when present), cpu, cuda or cuda:N.",
)


class SceneInput(click.ParamType):
    """A scene argument: a local path, or an https:// or s3:// URL kept as written (click's
    Path would fold its `//`)."""

    name = "path"

    def convert(
        self, value: str | Path, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path | str:
        return value if isinstance(value, str) and is_remote(value) else Path(value)


scene_options = _stack(
    click.argument("images", nargs=-1, required=True, type=SceneInput()),
    click.option(
        "--band-names",
        help="Comma-separated names for the input bands, overriding the files' descriptions.",
    ),
    click.option(
        "--resampling",
        type=click.Choice(RESAMPLING_METHODS),
        default="nearest",
        show_default=True,
        help="How coarser band files are resampled onto the finest grid.",
    ),
)

label_options = _stack(
    click.option(
        "--labels",
        "labels_path",
        required=True,
        type=click.Path(path_type=Path),
        help="Label raster, or vector polygons (GeoJSON, GeoPackage) with a class attribute.",
    ),
    click.option("--attribute", help="Integer class attribute of vector labels."),
    click.option(
        "--unlabelled",
        default="auto",
        show_default=True,
        help="Label value meaning 'no label': auto (the raster's nodata, else 0), none, or N.",
    ),
    click.option(
        "--legend",
        type=click.Path(path_type=Path),
        help="JSON legend with class names and colours.",
    ),
)


def load_scene(
    images: tuple[Path | str, ...], band_names: str | None, resampling: str
) -> xr.DataArray:
    """Open the IMAGE arguments as one lazy scene."""
    return open_scene(list(images), band_names=parse_names(band_names), resampling=resampling)


def load_labels(
    scene: xr.DataArray,
    labels_path: Path,
    attribute: str | None,
    unlabelled: str,
    legend: Path | None,
) -> Labels:
    """Read --labels onto the scene's grid with the label options."""
    return read_labels(
        labels_path,
        Grid.of(scene),
        attribute=attribute,
        unlabelled=parse_unlabelled(unlabelled),  # type: ignore[arg-type]
        legend=legend,
    )
