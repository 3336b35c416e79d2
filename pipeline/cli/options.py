"""Options shared by several subcommands, so every command spells them the same way."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import xarray as xr
from bandfusion.io.cloudmask import KINDS, LayerRef, MaskPolicy, kind_of, mask_scene
from bandfusion.io.grid import Grid
from bandfusion.io.labels import Labels, read_labels
from bandfusion.io.remote import is_remote
from bandfusion.io.scene import RESAMPLING_METHODS, SceneOptions
from bandfusion.models.devices import resolve_device

F = TypeVar("F", bound=Callable[..., Any])


class FiniteRange(click.FloatRange):
    """click.FloatRange that also refuses NaN and infinities (NaN passes every bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        """The range `--help` shows: "finite" where click would print "x<=None"."""
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()


POSITIVE = click.IntRange(min=1)
"""Counts that must be at least one: epochs, batch sizes, block edges, repeats, runs."""
CAP = click.IntRange(min=0)
"""Caps where 0 means none."""
SHARE = FiniteRange(0.0, 1.0, max_open=True)
"""A share that may be 0 (nothing held out, no dropout) but never all: [0, 1)."""
CLIP = FiniteRange(0.0, 0.5, max_open=True)
"""A share of pixels at each end of a band: [0, 0.5), so that some range remains."""
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


@dataclass(frozen=True)
class SceneArguments:
    """The scene options every scene-reading command shares, as one value: a command takes
    `scene_args` and opens its IMAGE arguments with `open`, so a new option lands in one place."""

    band_names: str | None = None
    resampling: str = "nearest"
    bands: str | None = None
    resolution: float | None = None
    nodata: float | None = None
    trust_metadata: bool = False

    def options(self) -> SceneOptions:
        """The options as the engine takes them: comma lists split into names."""
        names, picked = parse_names(self.band_names), parse_names(self.bands)
        return SceneOptions(
            band_names=tuple(names) if names else None,
            bands=tuple(picked) if picked else None,
            resolution=self.resolution,
            resampling=self.resampling,
            nodata=self.nodata,
            trust_metadata=self.trust_metadata,
        )

    def open(self, images: tuple[Path | str, ...]) -> xr.DataArray:
        """Open the IMAGE arguments (raster files, or one sensor product) as one lazy scene."""
        return self.options().open(list(images))


def _collect(arguments: type[Any], name: str) -> Callable[[F], F]:
    """A decorator handing the command one `name` argument, an `arguments` dataclass built from
    the options of the same names, in place of those separate options."""
    fields = tuple(arguments.__dataclass_fields__)

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def command(**kwargs: Any) -> Any:
            bundled = arguments(**{field: kwargs.pop(field) for field in fields})
            return function(**{name: bundled}, **kwargs)

        return command  # type: ignore[return-value]

    return decorate


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
    click.option(
        "--bands",
        help="Comma-separated bands to read, by name (a product's: B04, B4 or red; SR_B4).",
    ),
    click.option(
        "--resolution",
        type=FiniteRange(min=0.0, min_open=True),
        help="Grid of a sensor product, in metres (Sentinel-2: 10, 20 or 60). "
        "Default: the finest the bands read are held at.",
    ),
    click.option(
        "--nodata",
        type=FiniteRange(),
        help="No-data value of every band, in place of what the files declare (Sentinel-2 "
        "JPEG 2000 files declare none; 0 is their fill).",
    ),
    click.option(
        "--trust-metadata",
        is_flag=True,
        help="Skip the check of a product's reflectance against a sample of its pixels.",
    ),
    _collect(SceneArguments, "scene_args"),
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


def policy_callback(_ctx: click.Context, _param: click.Parameter, value: str) -> MaskPolicy:
    """click callback: a --mask value as the engine's policy; its error shown with the flag."""
    return MaskPolicy.parse(value)


mask_policy_option = click.option(
    "--mask",
    "mask_policy",
    default="auto",
    show_default=True,
    callback=policy_callback,
    help="Pixels not to classify, by the scene's mask layer: auto (the product's default: "
    "clouds, cirrus, cloud shadow, ...), none, or reasons like cloud,shadow,snow or "
    "auto,snow. Masked pixels get their own map values (docs/engine.md).",
)


@dataclass(frozen=True)
class MaskArguments:
    """--mask, --mask-layer and --mask-kind as one value a command applies to its scene."""

    mask_policy: MaskPolicy
    mask_layer: Path | None = None
    mask_kind: str | None = None

    def apply(self, scene: xr.DataArray) -> xr.DataArray:
        """The scene masked by the --mask options (a product's own layer where none is named)."""
        layers = []
        if self.mask_layer is not None:
            kind = self.mask_kind or kind_of(self.mask_layer)
            if kind is None:
                raise click.BadParameter(
                    f"{self.mask_layer}: its name shows no kind; name it with --mask-kind",
                    param_hint="--mask-layer",
                )
            layers.append(LayerRef(kind, str(self.mask_layer)))
        return mask_scene(scene, self.mask_policy, layers)


mask_options = _stack(
    mask_policy_option,
    click.option(
        "--mask-layer",
        type=click.Path(path_type=Path),
        help="Mask layer for plain band files: a Sentinel-2 SCL or a Landsat QA_PIXEL raster.",
    ),
    click.option(
        "--mask-kind",
        type=click.Choice(KINDS),
        help="What --mask-layer holds [from its file name: *_SCL_*, *QA_PIXEL*].",
    ),
    _collect(MaskArguments, "mask_args"),
)


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
