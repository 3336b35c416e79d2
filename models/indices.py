"""Normalised-difference spectral indices as extra input bands, computed from named band roles.

An index is (a − b) / (a + b) of two bands named by their role (green, nir, ...), so a model
declares `("NDWI",)` and the roles it was trained with, and prediction recomputes the same
bands from raw reflectance: users never prepare derived rasters themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

INDICES: dict[str, tuple[str, str]] = {
    "NDVI": ("nir", "red"),  # vegetation (Rouse et al. 1974)
    "NDWI": ("green", "nir"),  # open water (McFeeters 1996)
    "MNDWI": ("green", "swir1"),  # open water, robust to built-up land (Xu 2006)
    "NDBI": ("swir1", "nir"),  # built-up land (Zha et al. 2003)
}
"""Each index's (a, b) roles in (a − b) / (a + b)."""

SENTINEL2_ROLES: dict[str, tuple[str, ...]] = {
    "blue": ("B2", "B02"),
    "green": ("B3", "B03"),
    "red": ("B4", "B04"),
    "nir": ("B8", "B08"),
    "swir1": ("B11",),
    "swir2": ("B12",),
}
"""Band names each role takes on Sentinel-2, used when a model is given no explicit roles."""


def resolve_roles(
    indices: Sequence[str], bands: Sequence[str], roles: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The band name of every role `indices` need: from `roles`, else Sentinel-2 names.

    Raises ValueError for an unknown index, or a role with no band among `bands`.
    """
    unknown = [name for name in indices if name not in INDICES]
    if unknown:
        raise ValueError(f"unknown spectral index {unknown[0]!r}; known: {', '.join(INDICES)}")
    needed = sorted({role for name in indices for role in INDICES[name]})
    resolved = {}
    for role in needed:
        candidates = (roles[role],) if roles and role in roles else SENTINEL2_ROLES.get(role, ())
        band = next((b for b in candidates if b in bands), None)
        if band is None:
            shown = ", ".join(bands[:6]) + (f", ... ({len(bands)} bands)" if len(bands) > 6 else "")
            raise ValueError(
                f"no band for role {role!r} (tried {', '.join(candidates) or 'nothing'}) "
                f"among {shown}; name the band that plays it"
            )
        resolved[role] = band
    return resolved


def append_indices(
    x: np.ndarray, bands: Sequence[str], indices: Sequence[str], roles: Mapping[str, str]
) -> np.ndarray:
    """`x` (n, bands) float32 with one column per index appended, in the order of `indices`.

    Where a + b is 0 the index is 0. `roles` maps each needed role to a band name of `bands`.
    """
    column = {name: k for k, name in enumerate(bands)}
    derived = []
    for name in indices:
        a, b = (x[:, column[roles[role]]].astype(np.float64) for role in INDICES[name])
        total = a + b
        ratio = np.divide(a - b, total, out=np.zeros_like(total), where=total != 0)
        derived.append(ratio.astype(np.float32))
    return np.column_stack([x.astype(np.float32, copy=False), *derived])
