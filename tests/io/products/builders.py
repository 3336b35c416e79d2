"""Complete products in their exact delivered layouts, built from small real pixels."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pystac
import rasterio
import rasterio.shutil
from affine import Affine
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.raster import RasterBand, RasterExtension
from rasterio.crs import CRS

from tests.helpers import REPO

SAFE = next((REPO / "data" / "s2_l2a_safe").glob("*.SAFE"))
MTD = SAFE / "MTD_MSIL2A.xml"
UTM29 = CRS.from_epsg(32629)


def real_b04(size: int = 6) -> np.ndarray:
    """A size x size corner of the bundled product's B04 (60 m), as delivered (uint16 DN)."""
    path = next(SAFE.glob("GRANULE/*/IMG_DATA/R60m/*_B04_60m.jp2"))
    with rasterio.open(path) as src:
        return src.read(1)[190 : 190 + size, 0:size]


def write_jp2(path: Path, data: np.ndarray, resolution: float, origin=(546060.0, 5867400.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tif")
    transform = Affine(resolution, 0, origin[0], 0, -resolution, origin[1])
    _write_tif(tmp, data, {"crs": UTM29, "transform": transform})
    rasterio.shutil.copy(tmp, path, driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES")
    tmp.unlink()


def complete_safe(root: Path, mtd_text: str | None = None) -> Path:
    """A complete L2A SAFE (every file MTD_MSIL2A.xml lists, at 10, 20 and 60 m) whose 60 m
    pixels are the bundled product's and whose finer ones repeat them (nearest)."""
    safe = root / SAFE.name
    safe.mkdir(parents=True)
    text = mtd_text if mtd_text is not None else MTD.read_text()
    (safe / "MTD_MSIL2A.xml").write_text(text)
    base = real_b04()
    for image in re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", text):
        match = re.search(r"_(B\d\d|B8A|SCL)_(\d\d)m$", image)
        if match is None:
            continue
        resolution = int(match.group(2))
        band = match.group(1)
        pixels = base + (0 if band == "SCL" else int(band[1:].replace("8A", "13")))
        if band == "SCL":
            pixels = np.full_like(base, 6, dtype=np.uint8)
        factor = 60 // resolution
        write_jp2(
            safe / f"{image}.jp2",
            np.kron(pixels, np.ones((factor, factor), pixels.dtype)),
            resolution,
        )
    return safe


def zipped_safe(root: Path) -> Path:
    """The bundled product zipped as ESA delivers it: the .SAFE folder at the archive's root."""
    archive = root / f"{SAFE.stem}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in SAFE.rglob("*"):
            z.write(file, file.relative_to(SAFE.parent))
    return archive


def cut_safe(root: Path) -> Path:
    """A copy of the bundled (cut-down: 60 m bands only) product."""
    return Path(shutil.copytree(SAFE, root / SAFE.name))


LANDSAT_ID = "LC08_L2SP_001070_20200101_20200113_02_T1"


def landsat_groups(bands: int = 7) -> dict[str, dict[str, str]]:
    contents = {
        "LANDSAT_PRODUCT_ID": LANDSAT_ID,
        "PROCESSING_LEVEL": "L2SP",
        **{f"FILE_NAME_BAND_{n}": f"{LANDSAT_ID}_SR_B{n}.TIF" for n in range(1, bands + 1)},
        "FILE_NAME_QUALITY_L1_PIXEL": f"{LANDSAT_ID}_QA_PIXEL.TIF",
    }
    reflectance = {}
    for n in range(1, bands + 1):
        reflectance[f"REFLECTANCE_MULT_BAND_{n}"] = "2.75E-05"
        reflectance[f"REFLECTANCE_ADD_BAND_{n}"] = "-0.200000"
    return {
        "PRODUCT_CONTENTS": contents,
        "IMAGE_ATTRIBUTES": {
            "SPACECRAFT_ID": "LANDSAT_8",
            "SENSOR_ID": "OLI_TIRS",
            "DATE_ACQUIRED": "2020-01-01",
            "SCENE_CENTER_TIME": "14:04:34.9546890Z",
        },
        "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS": reflectance,
    }


def mtl_text(groups: dict[str, dict[str, str]], form: str) -> str:
    """The MTL in one of its three forms: txt (ODL), json or xml."""
    if form == "json":
        return json.dumps({"LANDSAT_METADATA_FILE": groups}, indent=2)
    if form == "xml":
        body = "".join(
            f"<{g}>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + f"</{g}>"
            for g, fields in groups.items()
        )
        root = f"<LANDSAT_METADATA_FILE>{body}</LANDSAT_METADATA_FILE>"
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{root}'
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for group, fields in groups.items():
        lines.append(f"  GROUP = {group}")
        for key, value in fields.items():
            quoted = value if re.fullmatch(r"[-+.0-9E]+", value) else f'"{value}"'
            lines.append(f"    {key} = {quoted}")
        lines.append(f"  END_GROUP = {group}")
    return "\n".join([*lines, "END_GROUP = LANDSAT_METADATA_FILE", "END", ""])


def landsat_product(root: Path, forms=("txt", "json", "xml")) -> Path:
    """A Landsat 8 C2 L2 folder: SR_B1..SR_B7 and QA_PIXEL from real Landsat 7 pixels, and the
    MTL in each of `forms`."""
    folder = root / LANDSAT_ID
    folder.mkdir(parents=True)
    with rasterio.open(REPO / "data/landsat7_rgb/RGB.byte.tif") as src:
        rgb = src.read(window=((300, 332), (300, 332)))
        left, top = src.transform.c + 300 * src.transform.a, src.transform.f + 300 * src.transform.e
        profile = {"crs": src.crs, "transform": Affine(30, 0, left, 0, -30, top)}
    for n in range(1, 8):
        dn = (rgb[n % 3].astype(np.uint16) * 100 + 7273) * (rgb[n % 3] > 0)
        _write_tif(folder / f"{LANDSAT_ID}_SR_B{n}.TIF", dn.astype(np.uint16), profile)
    _write_tif(folder / f"{LANDSAT_ID}_QA_PIXEL.TIF", np.full((32, 32), 21824, np.uint16), profile)
    groups = landsat_groups()
    for form in forms:
        (folder / f"{LANDSAT_ID}_MTL.{form}").write_text(mtl_text(groups, form))
    return folder


def _write_tif(path: Path, data: np.ndarray, profile: dict, **tags) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        **profile,
        **tags,
    ) as dst:
        dst.write(data, 1)


JP2 = "image/jp2"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
S2_COMMON = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B8A": "nir08"}


def band_file(band: str, resolution: int = 60) -> Path:
    """The bundled product's file of `band` at `resolution` (its SCL too)."""
    return next(SAFE.glob(f"GRANULE/*/IMG_DATA/R{resolution}m/*_{band}_{resolution}m.jp2"))


def stac_item(folder: Path, bands=("B02", "B04", "B8A"), *, forms=(JP2,), **raster) -> Path:
    """A STAC Item written with pystac (eo:bands, raster:bands) for the bundled product's 60 m
    `bands`, copied into `folder/bands/` and listed by relative href: each band once per media
    type in `forms` (earth-search lists `red` as a COG and `red-jp2` as JPEG 2000), its SCL as
    the `scl` asset; `raster` overrides the raster:bands fields (scale, offset, nodata)."""
    (folder / "bands").mkdir(parents=True, exist_ok=True)
    item = pystac.Item(
        "S2A_29UNU_20221005_0_L2A",
        geometry={"type": "Point", "coordinates": [-7.7, 52.7]},
        bbox=[-7.7, 52.7, -7.7, 52.7],
        datetime=datetime(2022, 10, 5, 11, 54, 11, tzinfo=timezone.utc),
        properties={"platform": "sentinel-2a", "constellation": "sentinel-2"},
        collection="sentinel-2-l2a",
    )
    fields = {"nodata": 0, "scale": 1e-4, "offset": -0.1, "spatial_resolution": 60, **raster}
    for band in bands:
        common = S2_COMMON[band]
        for form in forms:
            key = common if form == forms[0] else f"{common}-jp2"
            href = _copy_as(band_file(band), folder / "bands", form)
            asset = pystac.Asset(href=f"./bands/{href.name}", media_type=form, roles=["data"])
            item.add_asset(key, asset)
            EOExtension.ext(asset, add_if_missing=True).bands = [
                Band.create(name=band, common_name=common)
            ]
            RasterExtension.ext(asset, add_if_missing=True).bands = [RasterBand.create(**fields)]
    scl = _copy_as(band_file("SCL"), folder / "bands", JP2)
    item.add_asset("scl", pystac.Asset(href=f"./bands/{scl.name}", media_type=JP2))
    path = folder / "item.json"
    item.set_self_href(str(path))
    item.save_object(include_self_link=False)
    return path


def _copy_as(source: Path, folder: Path, form: str) -> Path:
    if form == JP2:
        return Path(shutil.copy(source, folder / source.name))
    target = folder / f"{source.stem}.tif"
    rasterio.shutil.copy(source, target, driver="COG", COMPRESS="DEFLATE")
    return target
