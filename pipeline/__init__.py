"""bandfusion: per-pixel land-cover maps from multispectral rasters."""

__version__ = "0.1.0"
