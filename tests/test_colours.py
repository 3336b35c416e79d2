"""One default palette and one colour table, shared by the CLI's legends and the estimator."""

from __future__ import annotations

import numpy as np
from bandfusion.colours import PALETTE, colour_table, default_colours
from bandfusion.io.legend import default_legend
from bandfusion.models.estimator import SpectralFusionClassifier


def test_the_estimator_colours_classes_as_the_cli_does() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.repeat([2, 5, 9], 100)
    estimator = SpectralFusionClassifier(hidden=(4,), epochs=1, batch_size=64, search=False).fit(
        x, y
    )
    colours = estimator.to_model().meta.class_colors
    assert colours == list(default_legend([2, 5, 9]).colors) == list(PALETTE[:3])


def test_the_palette_repeats_after_its_last_colour() -> None:
    assert default_colours(22)[20:] == list(PALETTE[:2])


def test_a_colour_table_holds_only_ids_a_geotiff_band_can() -> None:
    assert colour_table([0, 65535], [(1, 2, 3), (4, 5, 6)]) == {
        0: (1, 2, 3, 255),
        65535: (4, 5, 6, 255),
    }
    assert colour_table([-1, 3], [(1, 2, 3), (4, 5, 6)]) is None
    assert colour_table([65536], [(1, 2, 3)]) is None
