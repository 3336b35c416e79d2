"""`bandfusion batch`'s own rules, checked before any work (tests/batch/ runs the job)."""

from __future__ import annotations

import pytest
from bandfusion.cli import main


def test_cli_refuses_workers_with_a_scheduler(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        main(
            ["batch", "x.tif", "-m", "m", "--out-dir", "o", "--scheduler", "h:1", "--workers", "2"]
        )
    assert info.value.code == 2
    assert "local cluster only" in capsys.readouterr().err
