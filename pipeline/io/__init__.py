"""Rasters in and maps out: grids, scenes, labels, legends, GeoTIFF/COG writing, atomic outputs,
GDAL settings.

It knows no model: everything here works on arrays, grids and files.
"""
