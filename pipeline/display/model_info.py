"""A human description of a model directory: what `bandfusion info MODEL` prints."""

from __future__ import annotations

import json

from bandfusion.display.tables import selection_text
from bandfusion.models.checkpoint import TrainedModel


def describe_model(model: TrainedModel) -> str:
    """Format, bands, indices, classes with colours, architecture, size, how training chose
    its settings (and what it blended) and stored metrics."""
    meta, net = model.meta, model.net
    classes = zip(meta.class_ids, meta.class_names, meta.class_colors, strict=True)
    lines = [
        f"bandfusion model (format {meta.format_version}, bandfusion {meta.package_version})",
        f"bands ({len(meta.bands)}): {', '.join(meta.bands)}",
        *([f"derived indices: {', '.join(meta.indices)}"] if meta.indices else []),
        f"classes ({len(meta.class_ids)}):",
        *(f"  {cid:>5}  {name}  #{r:02x}{g:02x}{b:02x}" for cid, name, (r, g, b) in classes),
        f"architecture: {' -> '.join(map(str, net.widths()))} "
        f"(norm={net.norm}, activation={net.activation}, dropout={net.dropout:g}"
        f"{', each band clamped to its training range' if net.clamped else ''})",
        f"parameters: {sum(p.numel() for p in net.parameters()):,}",
        f"FLOPs per pixel: {net.flops_per_pixel():,}",
    ]
    selection = meta.training.get("selection")
    if isinstance(selection, dict):
        lines.append(selection_text(selection))
    if meta.metrics:
        lines.append("metrics:")
        lines += [f"  {key}: {_format_metric(value)}" for key, value in meta.metrics.items()]
    return "\n".join(lines)


def _format_metric(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, ensure_ascii=False)
