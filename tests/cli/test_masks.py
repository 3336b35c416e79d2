"""`--mask`, `--mask-layer` and `--mask-kind`: a masked map from the command line, its summary
line, and the refusals, each one line naming the flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.cli import cli
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model
from click.testing import CliRunner

from tests.fuzzing import run_cli
from tests.helpers import random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def chip(data_dir: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The water chip, a model of it, and a mask layer on its grid: cloud left, clear right."""
    where = tmp_path_factory.mktemp("masks")
    scene = open_scene(data_dir / S2)
    model = save_model(random_model(scene, [1, 2]), where / "model")
    values = np.full((512, 512), 4, np.uint8)  # vegetation: clear
    values[:, :100] = 9  # cloud high probability
    layer = where / "layer.tif"
    profile = {"driver": "GTiff", "width": 512, "height": 512, "count": 1, "dtype": "uint8"}
    with rasterio.open(
        layer, "w", **profile, crs=scene.attrs["crs"], transform=tuple(scene.attrs["transform"])
    ) as dst:
        dst.write(values, 1)
    return data_dir / S2, model, layer


def test_predict_masks_by_a_layer_and_counts_it(chip, tmp_path):
    image, model, layer = chip
    out = tmp_path / "map.tif"
    args = ["predict", str(image), "-m", str(model), "-o", str(out), "-q"]
    result = CliRunner().invoke(cli, [*args, "--mask-layer", str(layer), "--mask-kind", "s2_scl"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        classes = src.read(1)
        assert src.tags()["CLASS_NAMES"].count("masked: cloud") == 1
    assert (classes[:, :100] == 254).all() and not (classes[:, 100:] == 254).any()
    assert f"masked pixels: cloud {512 * 100:,}" in result.output
    plain = CliRunner().invoke(cli, [*args, "--overwrite", "--mask", "none"])
    assert plain.exit_code == 0 and "masked" not in plain.output
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1)[:, 100:], classes[:, 100:])
        assert not (src.read(1) == 254).any()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mask", "clouds"], "--mask clouds: use auto, none or a comma list of cloud,"),
        (["--mask", "cloud"], "--mask cloud: the scene has no mask layer"),
        (["--mask-layer", "{layer}"], "its name shows no kind; name it with --mask-kind"),
        (["--mask-layer", "{layer}", "--mask-kind", "fmask"], "'fmask' is not one of"),
    ],
)
def test_mask_refusals_are_one_line_naming_the_flag(chip, tmp_path, extra, message):
    image, model, layer = chip
    extra = [arg.format(layer=layer) for arg in extra]
    out = tmp_path / "map.tif"
    code, err = run_cli(["predict", str(image), "-m", str(model), "-o", str(out), *extra])
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_batch_and_the_other_commands_take_mask(chip):
    for command in ("batch", "train", "evaluate", "explain"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert "--mask" in result.output
