"""The `bandfusion` command end to end on real data, as a user runs it (subprocesses)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.cli import cli as command_line
from bandfusion.engine.predict import predict_proba_scene, predict_scene
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import load_model
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

WATER = "sen1floods11_spain"
S2 = f"{WATER}/Spain_7370579_S2Hand.tif"
LABELS = f"{WATER}/Spain_7370579_LabelHand.tif"
QUICK = ["--epochs", "6", "--hidden", "16,16", "--per-class-cap", "3000", "--quiet", "--quick"]


def run(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bandfusion.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def water_model(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("model") / "water-model"
    result = run(
        "train", data_dir / S2, "--labels", data_dir / LABELS, "--unlabelled", "-1",
        "--legend", data_dir / WATER / "legend.json", "--seed", "1", "-o", out, *QUICK,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "validation (spatially disjoint blocks)" in result.stdout
    assert "water" in result.stdout
    return out


def test_train_writes_a_safe_model_directory(water_model: Path):
    assert sorted(p.name for p in water_model.iterdir()) == ["model.json", "weights.safetensors"]
    meta = json.loads((water_model / "model.json").read_text())
    assert meta["class_ids"] == [0, 1]
    assert meta["class_names"] == ["not water", "water"]
    assert meta["metrics"]["validation"]["overall_accuracy"] > 0.85


def test_progress_on_a_pipe_is_one_line_a_stage_and_quiet_is_silent(
    tmp_path: Path, data_dir: Path, water_model: Path
):
    shown = run("predict", data_dir / S2, "-m", water_model, "-o", tmp_path / "a.tif")
    quiet = run("predict", data_dir / S2, "-m", water_model, "-o", tmp_path / "b.tif", "--quiet")
    assert shown.returncode == quiet.returncode == 0, shown.stderr + quiet.stderr
    assert shown.stderr == "classes: 262,144/262,144 px\n"  # no carriage-return redraws
    assert quiet.stderr == ""


def test_predict_writes_a_georeferenced_cog_with_colours_and_names(
    tmp_path: Path, data_dir: Path, water_model: Path
):
    out, png, proba = tmp_path / "map.tif", tmp_path / "map.png", tmp_path / "proba.tif"
    result = run(
        "predict", data_dir / S2, "-m", water_model, "-o", out,
        "--preview", png, "--probabilities", proba, "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"map: {out}" in result.stdout
    with rasterio.open(data_dir / S2) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.width, dst.height) == (
            src.crs, src.transform, src.width, src.height,
        )  # fmt: skip
        assert dst.dtypes[0] == "uint8" and dst.nodata == 255
        assert dst.block_shapes[0] == (512, 512) and dst.compression.value == "DEFLATE"
        assert dst.colormap(1)[1][:3] != dst.colormap(1)[0][:3]
        assert json.loads(dst.tags()["CLASS_NAMES"]) == {"0": "not water", "1": "water"}
        classes = dst.read(1)
    assert set(np.unique(classes)) == {0, 1}
    assert cog_validate(str(out))[0]
    with rasterio.open(proba) as src:
        assert src.count == 2 and src.dtypes[0] == "float32"
        probabilities = src.read()
    np.testing.assert_array_equal(probabilities.argmax(0), classes)
    assert png.stat().st_size > 10_000


def test_the_public_writer_gives_the_file_the_cli_writes(
    tmp_path: Path, data_dir: Path, water_model: Path
):
    """`write_geotiff(predict_scene(...), path)`, as the README's Python tour does, writes the
    map and the probabilities `bandfusion predict` writes: colours, class names, tags, pixels."""
    cli_map, cli_proba = tmp_path / "cli-map.tif", tmp_path / "cli-proba.tif"
    result = run(
        "predict", data_dir / S2, "-m", water_model, "-o", cli_map,
        "--probabilities", cli_proba, "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scene, model = open_scene(data_dir / S2), load_model(water_model)
    api_map = write_geotiff(predict_scene(scene, model), tmp_path / "api-map.tif")
    api_proba = write_geotiff(predict_proba_scene(scene, model), tmp_path / "api-proba.tif")
    for cli, api in [(cli_map, api_map), (cli_proba, api_proba)]:
        with rasterio.open(cli) as a, rasterio.open(api) as b:
            np.testing.assert_equal(dict(a.profile), dict(b.profile))  # NaN nodata equals NaN
            assert a.tags() == b.tags() and "CLASS_NAMES" in b.tags()
            assert a.descriptions == b.descriptions
            assert a.overviews(1) == b.overviews(1)
            np.testing.assert_array_equal(a.read(), b.read())
        assert cli.read_bytes() == api.read_bytes()
    with rasterio.open(cli_map) as a, rasterio.open(api_map) as b:
        assert a.colormap(1) == b.colormap(1)
        assert b.colormap(1)[1][:3] == tuple(model.meta.class_colors[1])


def test_window_size_does_not_change_the_map(tmp_path: Path, data_dir: Path, water_model: Path):
    """The CLI path (chunks → writer) gives the same map as one in-memory pass."""
    out = tmp_path / "map.tif"
    assert run("predict", data_dir / S2, "-m", water_model, "-o", out, "-q").returncode == 0
    scene = open_scene(data_dir / S2)
    in_memory = predict_scene(scene.chunk({"y": 37, "x": 512}), load_model(water_model)).values
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), in_memory)


def test_band_files_scene_with_a_model_trained_on_matching_bands(tmp_path: Path, data_dir: Path):
    """One file per band (On Cloud N), trained and predicted from the command line."""
    chip = sorted((data_dir / "oncloudn_s2/adwp").glob("B*.tif"))
    labels = tmp_path / "bright.tif"
    with rasterio.open(chip[2]) as src:
        red = src.read(1)
        profile = src.profile
    profile.update(dtype="uint8", nodata=None)
    with rasterio.open(labels, "w", **profile) as dst:
        dst.write((1 + (red > np.median(red))).astype("uint8"), 1)
    model = tmp_path / "model"
    trained = run("train", *chip, "--labels", labels, "-o", model, "--block-size", "32", *QUICK)
    assert trained.returncode == 0, trained.stderr
    assert json.loads((model / "model.json").read_text())["bands"] == ["B02", "B03", "B04", "B08"]
    out = tmp_path / "map.tif"
    assert run("predict", *chip, "-m", model, "-o", out, "-q").returncode == 0
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32736


def test_vector_labels_train_like_raster_labels(tmp_path: Path, data_dir: Path):
    stack = data_dir / "eolearn_slovenia/ndvi_stack.tif"
    common = [stack, "--block-size", "16", "--seed", "0", *QUICK]
    by_vector = run(
        "train", *common, "--labels", data_dir / "eolearn_slovenia/LULC.gpkg",
        "--attribute", "LULC_ID", "-o", tmp_path / "vector",
    )  # fmt: skip
    by_raster = run(
        "train",
        *common,
        "--labels",
        data_dir / "eolearn_slovenia/lulc.tif",
        "-o",
        tmp_path / "raster",
    )
    assert by_vector.returncode == 0 and by_raster.returncode == 0, by_vector.stderr
    weights = [(tmp_path / d / "weights.safetensors").read_bytes() for d in ("vector", "raster")]
    assert weights[0] == weights[1]


def test_evaluate_prints_a_table_and_writes_json(tmp_path: Path, data_dir: Path, water_model: Path):
    report = tmp_path / "m.json"
    result = run(
        "evaluate", "-m", water_model, data_dir / S2, "--labels", data_dir / LABELS,
        "--unlabelled", "-1", "--split", "validation", "--json", report,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "kappa" in result.stdout and "confusion matrix" in result.stdout
    scores = json.loads(report.read_text())
    stored = json.loads((water_model / "model.json").read_text())["metrics"]["validation"]
    assert scores["overall_accuracy"] == pytest.approx(stored["overall_accuracy"])
    assert set(scores["classes"]) == {"0", "1"}


def test_info_describes_rasters_and_models(data_dir: Path, water_model: Path):
    raster = run("info", data_dir / "landsat7_rgb/RGB.byte.tif")
    assert raster.returncode == 0
    assert "791 x 718 px, 3 bands" in raster.stdout and "striped" in raster.stdout
    model = run("info", water_model)
    assert model.returncode == 0 and "water" in model.stdout


@pytest.mark.parametrize(
    "command", ["train", "predict", "evaluate", "info", "benchmark", "explain", "batch"]
)
def test_every_subcommand_has_help_with_an_example(command: str):
    result = CliRunner().invoke(command_line, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0 and "Example:" in result.output
    assert "None]" not in result.output  # a range click describes with a missing bound


def _pickle_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return path


def _tampered_model(tmp_path: Path, water_model: Path) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(water_model, copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["architecture"]["in_bands"] = 12
    meta["bands"] = meta["bands"][:12]
    (copy / "model.json").write_text(json.dumps(meta))
    return copy


def _text_as_tif(tmp_path: Path) -> Path:
    path = tmp_path / "notes.tif"
    path.write_text("not a raster\n")
    return path


def _other_bands(tmp_path: Path, data_dir: Path) -> Path:
    return data_dir / "landsat7_rgb/RGB.byte.tif"


def _far_away_labels(tmp_path: Path, data_dir: Path) -> Path:
    return data_dir / "eolearn_slovenia/lulc.tif"


BAD_PREDICT = {
    "missing input": (lambda t, d, m: ["predict", t / "nope.tif", "-m", m], "no such file"),
    "not a raster": (lambda t, d, m: ["predict", _text_as_tif(t), "-m", m], "not a raster"),
    "band mismatch": (lambda t, d, m: ["predict", _other_bands(t, d), "-m", m], "do not match"),
    "pickle model": (
        lambda t, d, m: ["predict", d / S2, "-m", _pickle_model(t)],
        "never unpickles",
    ),
    "tampered model": (
        lambda t, d, m: ["predict", d / S2, "-m", _tampered_model(t, m)],
        "weights",
    ),
    "missing model": (lambda t, d, m: ["predict", d / S2, "-m", t / "none"], "no such model"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICT))
def test_bad_predict_inputs_get_one_line_exit_2_and_no_output(
    case: str, tmp_path: Path, data_dir: Path, water_model: Path
):
    make_args, fragment = BAD_PREDICT[case]
    out = tmp_path / "out.tif"
    result = run(*make_args(tmp_path, data_dir, water_model), "-o", out, "-q")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bandfusion: error:"), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tif")]


def test_missing_output_directory_fails_before_any_work(
    data_dir: Path, water_model: Path, tmp_path
):
    result = run("predict", data_dir / S2, "-m", water_model, "-o", tmp_path / "no/dir/map.tif")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    ("labels", "extra", "fragment"),
    [
        (_far_away_labels, [], "overlap"),
        (lambda t, d: d / LABELS, ["--unlabelled", "none", "--val-fraction", "0"], None),
        (lambda t, d: _text_as_tif(t), [], "notes.tif"),
    ],
)
def test_bad_labels_are_user_errors(tmp_path: Path, data_dir: Path, labels, extra, fragment):
    model = tmp_path / "model"
    result = run(
        "train", data_dir / S2, "--labels", labels(tmp_path, data_dir), "-o", model, *extra, *QUICK
    )
    if fragment is None:  # -1, 0 and 1 all become classes: valid, if odd
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not model.exists()


def test_no_labelled_pixels_is_a_user_error(tmp_path: Path, data_dir: Path):
    empty = tmp_path / "empty.tif"
    with rasterio.open(data_dir / LABELS) as src:
        profile = src.profile
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.full((1, 512, 512), -1, dtype="int16"))
    result = run(
        "train", data_dir / S2, "--labels", empty, "--unlabelled", "-1", "-o", tmp_path / "m"
    )
    assert result.returncode == 2
    assert "empty.tif" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path: Path, water_model: Path):
    result = run(
        "--debug", "predict", tmp_path / "nope.tif", "-m", water_model, "-o", tmp_path / "o.tif"
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("bandfusion")
    assert script.exists()
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout.startswith(
        "bandfusion"
    )
    assert os.access(script, os.X_OK)
