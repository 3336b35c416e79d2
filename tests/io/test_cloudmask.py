"""Mask layers on the scene's grid: the policies, the real Sentinel-2 SCL at 60 m and 20 m
against class counts computed here with numpy, and a Landsat QA_PIXEL with known bits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.errors import SceneError, SettingError
from bandfusion.io.cloudmask import (
    MASK_NODATA,
    REASONS,
    MaskPolicy,
    attach_mask,
    kind_of,
    mask_scene,
)
from bandfusion.io.scene import open_scene
from rasterio.transform import from_origin

SHARED = Path("/work/shared/data/s2_l2a_safe")
IMG_DATA = next(SHARED.glob("*.SAFE/GRANULE/*/IMG_DATA"), None)
needs_safe = pytest.mark.skipif(IMG_DATA is None, reason="needs the shared S2 L2A SAFE sample")
DEFAULT_S2 = {"cloud": (8, 9), "cirrus": (10,), "shadow": (3,), "saturated": (1,)}
WINDOW = (slice(700, 1100), slice(900, 1300))  # cloud, cirrus, shadow, land and swath edge


def code(reason: str) -> int:
    return REASONS.index(reason) + 1


def counts(mask: np.ndarray) -> dict[int, int]:
    values, sizes = np.unique(mask, return_counts=True)
    return dict(zip(values.tolist(), sizes.tolist(), strict=True))


def expected_s2(scl: np.ndarray, reasons: dict[str, tuple[int, ...]]) -> dict[int, int]:
    """The mask counts a policy should give, from SCL classes counted with numpy."""
    out = {0: int(np.isin(scl, [c for c in range(1, 12)]).sum())}
    for reason, classes in reasons.items():
        out[code(reason)] = int(np.isin(scl, classes).sum())
        out[0] -= out[code(reason)]
    out[MASK_NODATA] = int((scl == 0).sum())
    return {k: v for k, v in out.items() if v}


@pytest.fixture(scope="module")
def s2_scene():
    """The real 60 m band files as plain band files (three of them suffice)."""
    assert IMG_DATA is not None
    return open_scene(sorted((IMG_DATA / "R60m").glob("*_B0[234]_60m.jp2")))


def scl(resolution: int) -> Path:
    assert IMG_DATA is not None
    return next((IMG_DATA / f"R{resolution}m").glob(f"*_SCL_{resolution}m.jp2"))


def test_policies_parse_as_documented():
    assert MaskPolicy.parse("auto").reasons_for("s2_scl") == (
        "cloud",
        "cirrus",
        "shadow",
        "saturated",
    )
    assert MaskPolicy.parse("default").reasons_for("landsat_qa_pixel") == (
        "cloud",
        "cirrus",
        "shadow",
        "dilated_cloud",
    )
    assert MaskPolicy.parse("auto,snow").reasons_for("s2_scl")[-2:] == ("snow", "saturated")
    assert MaskPolicy.parse(" Cloud , shadow").reasons_for("s2_scl") == ("cloud", "shadow")
    assert MaskPolicy.parse("none").masks_nothing
    for bad in ("clouds", "", "none,cloud", "cloud,,x"):
        with pytest.raises(SettingError, match="auto, none or a comma list"):
            MaskPolicy.parse(bad)
    with pytest.raises(SettingError, match="s2_scl, landsat_qa_pixel"):
        MaskPolicy().reasons_for("fmask")


def test_layer_kinds_from_file_names():
    assert kind_of("T29UNU_20221005T115411_SCL_20m.jp2") == "s2_scl"
    assert kind_of("LC08_L2SP_001070_20220101_20220112_02_T1_QA_PIXEL.TIF") == "landsat_qa_pixel"
    assert kind_of("B04.tif") is None


@needs_safe
def test_real_scl_60m_gives_the_data_cards_counts_by_default(s2_scene):
    """The whole tile against the SCL counts in the data card (shared/data/README.md)."""
    masked = attach_mask(s2_scene, scl(60), "s2_scl", MaskPolicy())
    mask = masked["mask"]
    assert mask.dims == ("y", "x") and mask.dtype == np.uint8
    assert mask.data.chunks == s2_scene.data.chunks[1:]
    assert mask.attrs["reasons"] == {1: "cloud", 2: "cirrus", 3: "shadow", 6: "saturated"}
    assert counts(mask.values) == {
        0: 522_171 + 18_125 + 40_705 + 16_224 + 10,  # vegetation ... unclassified, snow
        code("cloud"): 757_674 + 210_178,
        code("cirrus"): 224_258,
        code("shadow"): 205_725,
        MASK_NODATA: 1_353_830,
    }


@needs_safe
@pytest.mark.parametrize("policy", ["auto", "cloud", "auto,snow,dark", "shadow,cirrus"])
def test_real_scl_60m_window_matches_numpy(s2_scene, policy):
    parsed = MaskPolicy.parse(policy)
    reasons = {r: c for r, c in {**DEFAULT_S2, "snow": (11,), "dark": (2,)}.items()}
    wanted = {r: reasons[r] for r in parsed.reasons_for("s2_scl")}
    with rasterio.open(scl(60)) as src:
        truth = src.read(1, window=rasterio.windows.Window.from_slices(*WINDOW))
    mask = attach_mask(s2_scene, scl(60), "s2_scl", parsed)["mask"][WINDOW].values
    assert counts(mask) == expected_s2(truth, wanted)
    assert {0, MASK_NODATA} < set(counts(mask))  # clear, masked and no-data pixels


@needs_safe
def test_real_scl_20m_lands_on_the_60m_grid_by_nearest_neighbour(s2_scene):
    with rasterio.open(scl(20)) as src:
        fine = src.read(1)
    nearest = fine[1::3, 1::3]  # the 20 m pixel under each 60 m pixel's centre
    mask = attach_mask(s2_scene, scl(20), "s2_scl", MaskPolicy())["mask"][WINDOW].values
    assert counts(mask) == expected_s2(nearest[WINDOW], DEFAULT_S2)


@needs_safe
def test_real_scl_60m_on_a_finer_grid_repeats_each_pixel(tmp_path):
    """A 20 m band crop as the scene; the 60 m SCL fills each 3 x 3 block with its class."""
    rows, cols = WINDOW
    with rasterio.open(scl(20)) as src:
        window = rasterio.windows.Window(cols.start * 3, rows.start * 3, 300, 240)
        profile = {
            **src.profile,
            "driver": "GTiff",
            "width": 300,
            "height": 240,
            "transform": src.window_transform(window),
        }
        band = tmp_path / "B05_20m.tif"
        with rasterio.open(band, "w", **profile) as dst:
            dst.write(src.read(1, window=window) + 1, 1)  # never 0: no nodata in the band
    with rasterio.open(scl(60)) as src:
        coarse = src.read(1, window=rasterio.windows.Window(cols.start, rows.start, 100, 80))
    mask = attach_mask(open_scene(band), scl(60), "s2_scl", MaskPolicy())["mask"].values
    expected = attach_mask_codes(np.repeat(np.repeat(coarse, 3, axis=0), 3, axis=1))
    np.testing.assert_array_equal(mask, expected)


def attach_mask_codes(scl_values: np.ndarray) -> np.ndarray:
    """The default S2 codes of SCL values, by table, independently of the module."""
    table = np.zeros(256, np.uint8)
    for reason, classes in DEFAULT_S2.items():
        table[list(classes)] = code(reason)
    table[0] = table[12:] = MASK_NODATA
    return table[scl_values]


def write(path: Path, data: np.ndarray, *, origin=(500_000.0, 4_000_000.0), res=30.0) -> Path:
    profile = {
        "driver": "GTiff",
        "width": data.shape[-1],
        "height": data.shape[-2],
        "count": 1 if data.ndim == 2 else data.shape[0],
        "dtype": data.dtype,
        "crs": "EPSG:32633",
        "transform": from_origin(*origin, res, res),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data if data.ndim == 3 else data[None])
    return path


QA_CASES = {  # QA_PIXEL value: code under the default Landsat policy
    0b0100_0000: 0,  # clear
    0b1000_0000: 0,  # water
    0b0010_0000: 0,  # snow: opt-in
    0b0000_0001: MASK_NODATA,  # fill
    0b0000_1001: MASK_NODATA,  # fill wins over cloud
    0b0000_0010: code("dilated_cloud"),
    0b0000_0100: code("cirrus"),
    0b0000_1000: code("cloud"),
    0b0001_0000: code("shadow"),
    0b0001_1110: code("cloud"),  # cloud first, then cirrus, shadow, dilated cloud
    0b0001_0110: code("cirrus"),
    0b0001_0010: code("shadow"),
    0b1010_1000_0000_1000: code("cloud"),  # confidence bits play no part
}


def test_synthetic_qa_pixel_bits_decode_by_precedence(tmp_path):
    values = np.array(list(QA_CASES), dtype=np.uint16)
    qa = np.tile(values, (5, 1))
    band = write(tmp_path / "SR_B4.tif", np.full(qa.shape, 8000, np.uint16))
    layer = write(tmp_path / "LC08_QA_PIXEL.TIF", qa)
    mask = attach_mask(open_scene(band), layer, "landsat_qa_pixel", MaskPolicy())["mask"].values
    np.testing.assert_array_equal(mask, np.tile(list(QA_CASES.values()), (5, 1)))
    snow = attach_mask(open_scene(band), layer, "landsat_qa_pixel", MaskPolicy.parse("snow"))
    assert counts(snow["mask"].values) == {0: 50, code("snow"): 5, MASK_NODATA: 10}


def test_pixels_outside_the_layer_are_no_data(tmp_path):
    band = write(tmp_path / "b.tif", np.ones((20, 30), np.uint16))
    qa = np.full((10, 30), 0b0100_0000, np.uint16)  # clear, over the top half only
    layer = write(tmp_path / "QA_PIXEL.tif", qa)
    mask = attach_mask(open_scene(band), layer, "landsat_qa_pixel", MaskPolicy())["mask"].values
    assert (mask[:10] == 0).all() and (mask[10:] == MASK_NODATA).all()


def test_bad_layers_are_one_line_errors(tmp_path):
    scene = open_scene(write(tmp_path / "b.tif", np.ones((4, 4), np.uint16)))
    floats = write(tmp_path / "f.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(SceneError, match=r"f\.tif: a s2_scl mask layer holds integers"):
        attach_mask(scene, floats, "s2_scl", MaskPolicy())
    with pytest.raises(SceneError, match=r"missing\.tif: no such file"):
        attach_mask(scene, tmp_path / "missing.tif", "s2_scl", MaskPolicy())
    other = tmp_path / "o.tif"
    write(other, np.zeros((4, 4), np.uint8))
    with rasterio.open(other, "r+") as dst:
        dst.crs = "EPSG:32634"
    with pytest.raises(SceneError, match="CRS"):
        attach_mask(scene, other, "s2_scl", MaskPolicy())


class Layer:
    def __init__(self, kind: str, href: str) -> None:
        self.kind, self.href = kind, href


def test_mask_scene_takes_the_first_known_layer_or_refuses_named_reasons(tmp_path):
    scene = open_scene(write(tmp_path / "b.tif", np.ones((4, 4), np.uint16)))
    layer = write(tmp_path / "scl.tif", np.full((4, 4), 9, np.uint8))
    layers = [Layer("fmask", "x"), Layer("s2_scl", str(layer))]
    masked = mask_scene(scene, MaskPolicy(), layers)
    assert (masked["mask"].values == code("cloud")).all()
    assert "mask" not in mask_scene(scene, MaskPolicy.parse("none"), layers).coords
    assert "mask" not in mask_scene(scene, MaskPolicy(), []).coords
    with pytest.raises(SettingError, match="cloud: the scene has no mask layer"):
        mask_scene(scene, MaskPolicy.parse("cloud"), [])
