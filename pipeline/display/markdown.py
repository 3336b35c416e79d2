"""Markdown sections: a benchmark's table with its protocol, settings and environment."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bandfusion.display.tables import benchmark_rows, benchmark_title

if TYPE_CHECKING:
    from bandfusion.engine.compare.results import Benchmark


def benchmark_markdown(bench: Benchmark) -> str:
    """The table, protocol, settings and environment as a Markdown section."""
    return "\n".join(
        [
            f"## {benchmark_title(bench)}",
            "",
            f"Protocol: {bench.protocol.describe()}.",
            "",
            *markdown_table(benchmark_rows(bench)),
            "",
            "Mean ± std over the seeds (std with ddof=1); times are wall-clock seconds.",
            "",
            *(f"- {key}: `{json.dumps(value)}`" for key, value in bench.settings.items()),
            *(f"- {key}: `{json.dumps(value)}`" for key, value in bench.environment.items()),
            "",
        ]
    )


def markdown_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """A header row and body rows as the lines of a Markdown (GFM) table."""
    return [
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join(" --- " for _ in rows[0]) + "|",
        *("| " + " | ".join(row) + " |" for row in rows[1:]),
    ]
