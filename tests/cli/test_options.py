"""The CLI's option parsers (bandfusion.cli.options)."""

from __future__ import annotations

import pytest
from bandfusion.cli.options import parse_widths


@pytest.mark.parametrize(
    ("text", "widths"), [("64,64", (64, 64)), ("128,32,128", (128, 32, 128)), ("none", ())]
)
def test_width_lists_parse(text, widths):
    assert parse_widths(text) == widths


def test_bad_width_lists_are_refused():
    with pytest.raises(ValueError, match="positive"):
        parse_widths("64,0")
