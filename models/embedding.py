"""Periodic embeddings of numeric inputs (PLR, Gorishniy et al. 2022, "On Embeddings for
Numerical Features in Tabular Deep Learning").

An MLP on a few raw numeric features learns smooth functions of them first (spectral bias);
mapping each feature x to [cos 2πcx, sin 2πcx] for k trainable frequencies c ~ N(0, σ), then
a per-feature linear map and a ReLU, lets it fit sharp class boundaries along each feature.
Each band is embedded on its own, so the layer is still a per-pixel function: an elementwise
cos/sin and one block-diagonal GEMM (one block per band).
"""

from __future__ import annotations

import math

import torch
from torch import nn

FREQUENCIES = 8
"""Trainable frequencies per band (k)."""
WIDTH = 16
"""Outputs per band (d): the embedding turns C bands into C·d channels."""


class PeriodicEmbedding(nn.Module):
    """(pixels, bands) standardised values → (pixels, bands·WIDTH) embedded channels."""

    def __init__(self, bands: int, scale: float) -> None:
        super().__init__()
        self.bands = bands
        self.frequencies = nn.Parameter(torch.randn(bands, FREQUENCIES) * scale)
        bound = 1 / math.sqrt(2 * FREQUENCIES)  # nn.Linear's initialisation
        self.weight = nn.Parameter(
            torch.empty(bands, 2 * FREQUENCIES, WIDTH).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(bands, WIDTH).uniform_(-bound, bound))

    @property
    def out_channels(self) -> int:
        return self.bands * WIDTH

    def forward(self, table: torch.Tensor) -> torch.Tensor:
        angle = (2 * math.pi) * table[:, :, None] * self.frequencies  # (pixels, bands, k)
        features = torch.cat([torch.cos(angle), torch.sin(angle)], dim=2).transpose(0, 1)
        out = torch.bmm(features, self.weight).transpose(0, 1) + self.bias  # (pixels, bands, d)
        return torch.relu(out).reshape(len(table), self.out_channels)
