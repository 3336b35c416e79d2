"""Products named by a folder URL: `s3://bucket/prefix/NAME.SAFE/` or a Landsat product's
`s3://bucket/prefix/PRODUCT_ID/`.

An object store has no folders to look into, and none is needed: a product's metadata file has
a known name under its folder (`MTD_MSIL2A.xml` / `MTD_MSIL1C.xml` at a SAFE's root,
`<PRODUCT_ID>_MTL.json|txt|xml` in a Landsat folder), so a HEAD request for each tells which
is there, and the metadata lists every other file relative to itself. An https:// folder is
refused: a web server may answer anything for a name it does not hold, so the user names the
metadata file or the zip.
"""

from __future__ import annotations

import re

from bandfusion.errors import SceneError
from bandfusion.io.products.files import present
from bandfusion.io.products.landsat import MTL_SUFFIXES
from bandfusion.io.products.sentinel2 import METADATA_NAMES
from bandfusion.io.remote import is_http, is_remote

LANDSAT_ID = re.compile(r"^L[COTEM]0\d_L2S[PR]_\d{6}_\d{8}_\d{8}_\d{2}_[A-Z0-9]{2}$")
"""A Landsat Collection 2 Level-2 product id (the name of its folder)."""


def is_folder_url(path: str) -> bool:
    """Whether `path` is a URL naming a folder: it ends in `/`, or names a `.SAFE` or a
    Landsat product id."""
    if not is_remote(path) or path.startswith("/vsi"):
        return False
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return path.endswith("/") or name.upper().endswith(".SAFE") or bool(LANDSAT_ID.match(name))


def folder_metadata(url: str) -> str:
    """The URL of the metadata file of the product under the folder `url`: the first of the
    known names there; a SceneError naming `url` when there is none, or it is https://."""
    if is_http(url):
        raise SceneError(
            f"{url}: an https:// folder cannot be listed; give the URL of the product's metadata "
            "file (MTD_MSIL2A.xml, *_MTL.json) or of its zip"
        )
    root = url.rstrip("/")
    name = root.rsplit("/", 1)[-1]
    safe = name.upper().endswith(".SAFE")
    candidates = [f"{root}/{n}" for n in METADATA_NAMES]
    candidates += [] if safe else [f"{root}/{name}{suffix}" for suffix in MTL_SUFFIXES]
    held = present(candidates)
    found = next((c for c in candidates if c in held), None)
    if found is None:
        looked = ", ".join(c.rsplit("/", 1)[-1] for c in candidates)
        raise SceneError(f"{url}: no product there (looked for {looked})")
    return found
