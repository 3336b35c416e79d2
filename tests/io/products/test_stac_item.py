"""STAC Items and ItemCollections written with pystac, pointing at the bundled product's files."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bandfusion.errors import SceneError
from bandfusion.io.products import read_product
from bandfusion.io.scene import open_scene

from tests.conftest import S3_BUCKET
from tests.io.products.builders import COG, JP2, SAFE, stac_item


def test_an_item_is_read_with_its_band_names_and_raster_bands(tmp_path: Path):
    product = read_product(stac_item(tmp_path))
    assert product is not None
    assert (product.sensor, product.level) == ("sentinel-2a", "L2A")
    assert product.datetime == "2022-10-05T11:54:11+00:00"
    assert product.band_names() == ["B02", "B04", "B8A"]
    assert {(b.resolution, b.scale, b.offset, b.nodata) for b in product.bands} == {
        (60.0, 1e-4, -0.1, 0.0)
    }
    assert {b.origin for b in product.bands} == {"raster:bands"}
    assert {Path(b.href).parent for b in product.bands} == {tmp_path / "bands"}
    assert [m.kind for m in product.masks] == ["s2_scl"]


def test_an_item_gives_the_pixels_of_the_safe(tmp_path: Path):
    scene = open_scene(stac_item(tmp_path), bands=["blue", "nir08"])
    assert list(scene["band"].values) == ["B02", "B8A"]
    np.testing.assert_array_equal(scene.values, open_scene(SAFE, bands=["B02", "B8A"]).values)


def test_relative_hrefs_follow_the_item_wherever_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    stac_item(tmp_path / "first")
    moved = Path(shutil.copytree(tmp_path / "first", tmp_path / "moved"))
    shutil.rmtree(tmp_path / "first")
    monkeypatch.chdir(tmp_path)
    product = read_product("moved/item.json")
    assert product is not None
    assert {Path(b.href).parent for b in product.bands} == {moved / "bands"}
    assert open_scene("moved/item.json", bands=["red"]).values.shape == (1, 384, 384)


@pytest.mark.parametrize("forms", [(COG, JP2), (JP2, COG)], ids=["cog-first", "jp2-first"])
def test_a_band_listed_as_cog_and_jp2_is_read_once_from_the_cog(tmp_path: Path, forms):
    path = stac_item(tmp_path, forms=forms)
    assert len(json.loads(path.read_text())["assets"]) == 7  # 3 bands twice, and the SCL
    product = read_product(path)
    assert product is not None
    assert product.band_names() == ["B02", "B04", "B8A"]
    assert {Path(b.href).suffix for b in product.bands} == {".tif"}
    scene = open_scene(path, bands=["B02", "B8A"])
    np.testing.assert_array_equal(scene.values, open_scene(SAFE, bands=["B02", "B8A"]).values)


def test_an_item_collection_of_one_item_is_that_item(tmp_path: Path):
    item = json.loads(stac_item(tmp_path).read_text())
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    alone = read_product(tmp_path / "item.json")
    assert alone is not None and read_product(one) == replace(alone, path=str(one))
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"type": "FeatureCollection", "features": [item, item]}))
    with pytest.raises(SceneError, match=r"two\.json: an ItemCollection of 2 items; a scene is"):
        read_product(two)


def test_stac_1_1_bands_read_like_eo_and_raster_bands(tmp_path: Path):
    """STAC 1.1 merges eo:bands and raster:bands into `bands`, with prefixed fields."""
    path = stac_item(tmp_path)
    doc = json.loads(path.read_text())
    for asset in doc["assets"].values():
        if "eo:bands" not in asset:
            continue
        eo, raster = asset.pop("eo:bands")[0], asset.pop("raster:bands")[0]
        asset["bands"] = [
            {
                "name": eo["name"],
                "eo:common_name": eo["common_name"],
                "nodata": raster["nodata"],
                **{f"raster:{k}": raster[k] for k in ("scale", "offset", "spatial_resolution")},
            }
        ]
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc))
    assert read_product(newer).bands == read_product(path).bands  # type: ignore[union-attr]


def test_an_item_without_raster_bands_keeps_the_files_values(tmp_path: Path):
    path = stac_item(tmp_path)
    doc = json.loads(path.read_text())
    for asset in doc["assets"].values():
        asset.pop("raster:bands", None)
    path.write_text(json.dumps(doc))
    product = read_product(path)
    assert product is not None
    assert {(b.scale, b.offset, b.nodata, b.resolution) for b in product.bands} == {
        (1.0, 0.0, None, None)
    }
    assert {b.origin for b in product.bands} == {"STAC item (no raster:bands)"}


def test_items_without_bands_or_with_broken_radiometry_are_one_line(tmp_path: Path):
    path = stac_item(tmp_path, scale="x")
    with pytest.raises(SceneError, match=r"item\.json: asset 'blue' scale is 'x', not a number"):
        read_product(path)
    doc = json.loads(stac_item(tmp_path / "bare").read_text())
    doc["assets"] = {k: v for k, v in doc["assets"].items() if k == "scl"}
    bare = tmp_path / "bare" / "item.json"
    bare.write_text(json.dumps(doc))
    with pytest.raises(SceneError, match=r"has no single-band asset with eo:bands"):
        read_product(bare)


def test_an_item_served_over_https_reads_its_assets_from_beside_it(tmp_path: Path, http_server):
    """An Item fetched by URL (relative hrefs resolved against the URL) gives the pixels, radiometry
    and cloud mask of the same Item read from disk."""
    item = stac_item(tmp_path)
    for path in [item, *(tmp_path / "bands").iterdir()]:
        http_server.publish(f"/items/{path.relative_to(tmp_path)}", path)
    url = http_server.url + "/items/" + item.name
    remote, local = read_product(url), read_product(item)
    assert remote is not None and local is not None
    assert all(b.href.startswith(http_server.url) for b in remote.bands)
    assert [m.href.startswith(http_server.url) for m in remote.masks] == [True]
    assert [(b.name, b.scale, b.offset, b.nodata) for b in remote.bands] == [
        (b.name, b.scale, b.offset, b.nodata) for b in local.bands
    ]
    np.testing.assert_array_equal(open_scene(url).values, open_scene(item).values)


def test_an_item_in_object_storage_reads_its_assets_from_beside_it(tmp_path: Path, s3_env):
    """An Item at s3://… (relative hrefs resolved against its key) gives the pixels, radiometry
    and cloud mask of the same Item read from disk, and a missing one is one line."""
    item = stac_item(tmp_path)
    for path in [item, *(tmp_path / "bands").iterdir()]:
        s3_env.upload_file(str(path), S3_BUCKET, f"items/{path.relative_to(tmp_path)}")
    url = f"s3://{S3_BUCKET}/items/{item.name}"
    remote, local = read_product(url), read_product(item)
    assert remote is not None and local is not None
    assert all(b.href.startswith(f"s3://{S3_BUCKET}/items/bands/") for b in remote.bands)
    assert [m.href.startswith(f"s3://{S3_BUCKET}/items/") for m in remote.masks] == [True]
    assert [(b.name, b.scale, b.offset, b.nodata) for b in remote.bands] == [
        (b.name, b.scale, b.offset, b.nodata) for b in local.bands
    ]
    np.testing.assert_array_equal(open_scene(url).values, open_scene(item).values)
    with pytest.raises(SceneError, match=rf"^s3://{S3_BUCKET}/items/nothing\.json: ") as caught:
        read_product(f"s3://{S3_BUCKET}/items/nothing.json")
    assert "\n" not in str(caught.value)


def test_an_item_url_that_fails_is_one_line(http_server):
    with pytest.raises(
        SceneError, match=r"^http://127\.0\.0\.1:\d+/nothing/item\.json: "
    ) as caught:
        read_product(http_server.url + "/nothing/item.json")
    assert "\n" not in str(caught.value)
