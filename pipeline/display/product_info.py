"""A human description of a sensor product: what `bandfusion info PRODUCT` prints."""

from __future__ import annotations

from bandfusion.display.tables import align
from bandfusion.io.products import Product


def describe_product(product: Product) -> str:
    """Sensor, date, level; each band file with its resolution, nodata, scale/offset and where
    they came from; the mask layers."""
    lines = [
        f"product:     {product.path}",
        f"sensor:      {product.sensor}",
        f"date:        {product.datetime or 'unknown'}",
        f"level:       {product.level or 'unknown'}",
        "bands:",
    ]
    rows = [
        [
            band.name,
            _metres(band.resolution),
            f"nodata={band.nodata:g}" if band.nodata is not None else "nodata=none",
            f"scale={band.scale:g}",
            f"offset={band.offset:g}",
            f"from {band.origin}",
            band.href.rsplit("/", 1)[-1],
        ]
        for band in product.bands
    ]
    lines.extend(align(rows, right={1}, indent="  "))
    lines.append("masks:" if product.masks else "masks:       none")
    masks = [[m.kind, _metres(m.resolution), m.href.rsplit("/", 1)[-1]] for m in product.masks]
    lines.extend(align(masks, right={1}, indent="  ") if masks else [])
    return "\n".join(lines)


def _metres(resolution: float | None) -> str:
    return f"{resolution:g} m" if resolution is not None else "? m"
