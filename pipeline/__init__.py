"""bandfusion: per-pixel land-cover maps from multispectral rasters.

The public API mirrors the CLI: open_scene → train → save_model / load_model → predict_scene →
write_geotiff, and evaluate. Every public name is imported from its module on first use
(PEP 562, through `lazy_loader`), so `import bandfusion` loads nothing but this file and a
command pays only for the parts it touches: `bandfusion predict` never loads scikit-learn,
matplotlib or dask.distributed.

The sub-packages are layered, each importing only those below it (import-linter checks it):
`cli` → `display` → `batch` → `engine` → `io`; `models` stands apart. Three modules at the root
serve every layer and import nothing of bandfusion: `errors`, `atomic` (how outputs are
replaced) and `colours` (the default palette and the colour table); `models` imports only them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import lazy_loader

try:
    __version__ = version("bandfusion")
except PackageNotFoundError:  # a source tree on sys.path without an installed distribution
    __version__ = "0+unknown"

# The public names and their modules are listed once, in __init__.pyi.
__getattr__, __dir__, _public = lazy_loader.attach_stub(__name__, __file__)
__all__ = [*_public, "__version__"]
