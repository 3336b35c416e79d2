"""Presentation: tables, Markdown, figures, PNG quicklooks and progress bars.

The engine returns data; this package turns it into what people read. The CLI, notebooks and
the Python API all draw through it, so a figure looks the same wherever it is made.

`tables` (plain text, one column aligner), `markdown`, `figures` (matplotlib) and `files` (what
`benchmark` and `explain` write) present engine results; `preview` draws class-map quicklooks,
`raster_info` describes a raster file, `progress` draws bars.
"""
