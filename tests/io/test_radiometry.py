"""The radiometric domain and the pixel-sample check, on crops of the real Sentinel-2 L2A
product's 60 m bands (baseline 04.00: reflectance = (DN − 1000) / 10000, 0 is its fill)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.errors import SceneError
from bandfusion.io.radiometry import check_radiometry, scene_radiometry
from bandfusion.io.scene import open_scene
from rasterio.windows import Window

SAFE = Path("/work/shared/data/s2_l2a_safe")
R60 = sorted(SAFE.glob("*.SAFE/GRANULE/*/IMG_DATA/R60m"))
BANDS = ("B02", "B04", "B8A", "B11", "B12")
WINDOW = Window(768, 256, 512, 256)
"""Ocean, land, cloud and the swath edge's 0 fill, side by side."""

pytestmark = pytest.mark.skipif(not R60, reason="the real SAFE sample is not on this machine")


def crop_bands(directory: Path, scale: float = 1.0, offset: float = 0.0) -> list[Path]:
    """The window of each band as a GeoTIFF declaring no nodata, as the JP2s do, with GDAL
    scale/offset tags where asked."""
    paths = []
    for band in BANDS:
        (source,) = R60[0].glob(f"*_{band}_60m.jp2")
        with rasterio.open(source) as src:
            profile = {
                "driver": "GTiff",
                "width": WINDOW.width,
                "height": WINDOW.height,
                "count": 1,
                "dtype": "uint16",
                "crs": src.crs,
                "transform": src.window_transform(WINDOW),
            }
            data = src.read(1, window=WINDOW)
        path = directory / source.with_suffix(".tif").name
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
            if (scale, offset) != (1.0, 0.0):
                dst.scales, dst.offsets = (scale,), (offset,)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    base = tmp_path_factory.mktemp("safe60")
    made = {}
    for name, offset in (("right", -0.1), ("none", 0.0), ("twice", -0.2)):
        (base / name).mkdir()
        made[name] = crop_bands(base / name, 1e-4, offset)
    (base / "dn").mkdir()
    made["dn"] = crop_bands(base / "dn")
    return made


def test_band_files_are_named_by_their_band_and_scenes_by_their_domain(crops) -> None:
    scene = open_scene(crops["right"], nodata=0)
    assert list(scene["band"].values) == list(BANDS)
    assert scene_radiometry(scene) == {
        "domain": "reflectance",
        "source": "scale/offset from GDAL tags",
    }
    assert scene_radiometry(open_scene(crops["dn"])) == {"domain": "dn", "source": ""}


def test_the_right_offset_passes(crops) -> None:
    check_radiometry(open_scene(crops["right"], nodata=0), "right")


@pytest.mark.parametrize(
    ("case", "says"),
    [("none", "the offset looks not applied"), ("twice", "the offset looks applied twice")],
)
def test_an_offset_missing_or_applied_twice_is_refused(crops, case: str, says: str) -> None:
    with pytest.raises(SceneError, match=rf"^{case}: band B\w+: .*{says}") as caught:
        check_radiometry(open_scene(crops[case], nodata=0), case)
    assert "\n" not in str(caught.value) and str(caught.value).endswith("(trust_metadata)")


def test_unscaled_values_taken_for_reflectance_are_refused(crops) -> None:
    scene = open_scene(crops["dn"], nodata=0)
    scene.attrs["radiometry"] = "reflectance"
    with pytest.raises(SceneError, match=r"band B02: reflectance spans .* outside -0.2 to 2.5"):
        check_radiometry(scene, "dn")


def test_the_fill_counts_unless_nodata_says_so(crops) -> None:
    """Without nodata the swath edge's 0 reads as reflectance −0.1 and is refused."""
    with pytest.raises(SceneError, match="applied twice"):
        check_radiometry(open_scene(crops["right"]), "right")


def test_dn_scenes_are_not_checked(crops) -> None:
    check_radiometry(open_scene(crops["dn"], nodata=0), "dn")


def test_nodata_overrides_every_band(crops) -> None:
    plain = open_scene(crops["dn"])
    given = open_scene(crops["dn"], nodata=0)
    assert np.isnan(plain["nodata"].values).all()
    assert (given["nodata"].values == 0).all()
    scaled = open_scene(crops["right"], nodata=0).values
    raw = open_scene(crops["dn"]).values
    assert (raw == 0).any()
    assert np.array_equal(np.isnan(scaled), raw == 0)
