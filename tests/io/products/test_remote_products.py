"""Sensor products by URL: the bundled SAFE and a built Landsat C2 L2 product uploaded to S3
(moto's server on loopback) and served over HTTP with Range (a loopback server), in every form
a product is named by, read exactly as the local product: the same pixels, coordinates and
attributes (radiometry, nodata, mask layers). Whatever is missing is one line naming the URL;
an https:// folder is refused with what to give instead. `bandfusion batch` on an s3:// SAFE
writes `bandfusion predict`'s map of the local copy, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from bandfusion.batch.checks import MissingInputs, check_inputs
from bandfusion.batch.manifest import SceneSpec
from bandfusion.errors import SceneError
from bandfusion.io.products import is_product, read_product
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.cli.test_hostile import cli as run
from tests.conftest import S3_BUCKET
from tests.helpers import random_model
from tests.io.products.builders import LANDSAT_ID, SAFE, landsat_product, zipped_safe
from tests.servers import RangeServer

ROOT = f"s3://{S3_BUCKET}/products"
BANDS = ["B02", "B04", "B8A"]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled SAFE, its zip, and a Landsat product (its MTL in all three forms)."""
    root = tmp_path_factory.mktemp("remote-products")
    return {"safe": SAFE, "zip": zipped_safe(root), "landsat": landsat_product(root)}


@pytest.fixture(scope="module")
def uploaded(s3_store: tuple[str, Any], local: dict[str, Path]) -> None:
    """The products in the bucket under `ROOT`, as their folders and files are laid out."""
    _, s3 = s3_store
    key = ROOT.removeprefix(f"s3://{S3_BUCKET}/")
    for name in ("safe", "landsat"):
        folder = local[name]
        for file in folder.rglob("*"):
            if file.is_file():
                s3.upload_file(
                    str(file), S3_BUCKET, f"{key}/{folder.name}/{file.relative_to(folder)}"
                )
    s3.upload_file(str(local["zip"]), S3_BUCKET, f"{key}/{local['zip'].name}")


@pytest.fixture(scope="module")
def served(http_server: RangeServer, local: dict[str, Path]) -> str:
    """The same files served over HTTP under /products; the base URL."""
    for name in ("safe", "landsat"):
        folder = local[name]
        for file in folder.rglob("*"):
            if file.is_file():
                http_server.publish(f"/products/{folder.name}/{file.relative_to(folder)}", file)
    http_server.publish(f"/products/{local['zip'].name}", local["zip"])
    return f"{http_server.url}/products"


def _same_scene(remote: xr.DataArray, product: Path, where: str) -> None:
    """`remote` is the scene of the local `product`, but for file names, which are `where`'s."""
    scene = open_scene(product)
    assert list(remote["band"].values) == list(scene["band"].values)
    for name in ("x", "y"):
        np.testing.assert_array_equal(remote[name].values, scene[name].values)
    np.testing.assert_array_equal(remote.values, scene.values)
    local_root = str(product.parent)
    attrs = {k: v for k, v in scene.attrs.items() if k != "mask_layers"}
    assert {k: v for k, v in remote.attrs.items() if k != "mask_layers"} == attrs
    layers = [(kind, href.replace(local_root, where)) for kind, href in scene.attrs["mask_layers"]]
    assert [tuple(layer) for layer in remote.attrs["mask_layers"]] == layers
    assert remote.attrs["radiometry_source"] and layers  # offsets and masks came through


SAFE_FORMS = {
    "prefix": "{root}/{safe}",
    "prefix/": "{root}/{safe}/",
    "mtd": "{root}/{safe}/MTD_MSIL2A.xml",
}


@pytest.mark.parametrize("form", sorted(SAFE_FORMS))
def test_a_safe_in_s3_reads_as_the_local_one(form: str, s3_env: Any, uploaded: None) -> None:
    url = SAFE_FORMS[form].format(root=ROOT, safe=SAFE.name)
    assert is_product(url)
    _same_scene(open_scene(url), SAFE, ROOT)


@pytest.mark.parametrize("where", ["s3", "https"])
def test_a_zipped_safe_by_url_reads_in_place_as_the_local_one(
    where: str, s3_env: Any, uploaded: None, served: str, local: dict[str, Path]
) -> None:
    root = ROOT if where == "s3" else served
    url = f"{root}/{local['zip'].name}"
    scene = open_scene(url)
    chain = f"/vsizip//vsis3/{ROOT[5:]}" if where == "s3" else f"/vsizip//vsicurl/{served}"
    _same_scene(scene, SAFE, f"{chain}/{local['zip'].name}")


def test_a_safe_by_its_mtd_over_https_reads_as_the_local_one(served: str) -> None:
    _same_scene(open_scene(f"{served}/{SAFE.name}/MTD_MSIL2A.xml"), SAFE, served)


@pytest.mark.parametrize(
    "form", ["s3 prefix", "s3 prefix/", "s3 txt", "s3 json", "s3 xml", "https json", "https txt"]
)
def test_a_landsat_product_by_url_reads_as_the_local_one(
    form: str, s3_env: Any, uploaded: None, served: str, local: dict[str, Path]
) -> None:
    where, what = form.split()
    root = ROOT if where == "s3" else served
    folder = f"{root}/{LANDSAT_ID}"
    url = {"prefix": folder, "prefix/": f"{folder}/"}.get(what, f"{folder}/{LANDSAT_ID}_MTL.{what}")
    product = read_product(url)
    assert product is not None and [b.name for b in product.bands][:2] == ["SR_B1", "SR_B2"]
    _same_scene(open_scene(url), local["landsat"], root)


def test_what_is_missing_remotely_is_one_line_naming_the_url(
    s3_env: Any, uploaded: None, served: str
) -> None:
    cases = {
        f"{served}/{SAFE.name}/": r"an https:// folder cannot be listed; give the URL of the "
        r"product's metadata file \(MTD_MSIL2A\.xml, \*_MTL\.json\) or of its zip",
        f"{served}/{LANDSAT_ID}": "an https:// folder cannot be listed",
        f"{ROOT}/nothing/": r"no product there \(looked for MTD_MSIL2A\.xml, MTD_MSIL1C\.xml, "
        r"nothing_MTL\.txt",
        f"{ROOT}/{SAFE.name.replace('T29UNU', 'T29UNV')}": r"no product there \(looked for "
        r"MTD_MSIL2A\.xml, MTD_MSIL1C\.xml\)$",
        f"{ROOT}/gone/MTD_MSIL2A.xml": "no such file",
        f"{served}/gone/MTD_MSIL2A.xml": "no such file",
        f"{ROOT}/gone.zip": "no such file",
    }
    with RangeServer() as closed:  # bound, then closed: nothing listens on its port
        cases[f"{closed.url}/x/MTD_MSIL2A.xml"] = r"cannot reach it \(.*refused"
    for url, message in cases.items():
        with pytest.raises(SceneError) as caught:
            open_scene(url)
        line = str(caught.value)
        assert "\n" not in line and line.startswith(f"{url}: "), line
        assert re.search(message, line), line


def test_batch_checks_remote_products_before_any_cluster(
    s3_env: Any, uploaded: None, local: dict[str, Path]
) -> None:
    held = [f"{ROOT}/{SAFE.name}/", f"{ROOT}/{LANDSAT_ID}", f"{ROOT}/{local['zip'].name}"]
    stamps = check_inputs([SceneSpec.of(url) for url in held])
    assert all(stamps[url].size for url in held)  # the metadata's size for a folder
    missing = [f"{ROOT}/nothing/", f"{ROOT}/gone.zip"]
    with pytest.raises(MissingInputs) as caught:
        check_inputs([SceneSpec.of(url) for url in [*held, *missing]])
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("2 of 5 inputs cannot be read")
    assert lines[1] == f"  {ROOT}/nothing/: no product there (looked for MTD_MSIL2A.xml, " + (
        "MTD_MSIL1C.xml, nothing_MTL.txt, nothing_MTL.json, nothing_MTL.xml)"
    )
    assert lines[2] == f"  {ROOT}/gone.zip: no such object"


def test_batch_on_an_s3_safe_writes_predicts_map_of_the_local_copy(
    tmp_path: Path, s3_env: Any, uploaded: None, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = open_scene(SAFE, bands=BANDS)
    model = save_model(random_model(scene.fillna(0.0), [1, 2, 3]), tmp_path / "model")
    expected = tmp_path / "local.tif"
    code, _, err = run(
        ["predict", str(SAFE), "--bands", ",".join(BANDS), "-m", str(model), "-o", str(expected)],
        capsys,
    )
    assert code == 0, err
    out = tmp_path / "out"
    args = ["batch", f"{ROOT}/{SAFE.name}/", "--bands", ",".join(BANDS), "-m", str(model),
            "--out-dir", str(out), "--workers", "1", "--threads-per-worker", "1", "-q"]  # fmt: skip
    code, _, err = run(args, capsys)
    assert code == 0, err
    assert (out / f"{SAFE.stem}.tif").read_bytes() == expected.read_bytes()


def test_info_by_url_and_its_refusals_at_the_cli(
    s3_env: Any, uploaded: None, served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["info", f"{ROOT}/{LANDSAT_ID}/"], capsys)
    assert code == 0, err
    assert f"product:     {ROOT}/{LANDSAT_ID}/\nsensor:      landsat-8\n" in out
    assert "masks:\n  landsat_qa_pixel  30 m" in out
    for url in (f"{served}/{SAFE.name}/", f"{ROOT}/nothing/"):
        code, _, err = run(["info", url], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"bandfusion: error: {url}: "), lines[0]
