"""An output folder a command makes is gone again when the command fails or is interrupted with
nothing written in it; a folder that was there, or holds files, stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from bandfusion.cli.outputs import output_dir


@pytest.mark.parametrize("ending", [RuntimeError("failed"), KeyboardInterrupt()])
def test_a_folder_made_for_a_run_that_ends_early_is_removed(
    tmp_path: Path, ending: BaseException
) -> None:
    target = tmp_path / "out"
    with pytest.raises(type(ending)), output_dir(target, ["a.json"], [], overwrite=False):
        assert target.is_dir()
        raise ending
    assert not target.exists()


def test_a_folder_that_was_there_or_holds_files_stays(tmp_path: Path) -> None:
    there, written = tmp_path / "there", tmp_path / "written"
    there.mkdir()
    for target in (there, written):
        with pytest.raises(RuntimeError), output_dir(target, ["a.json"], [], overwrite=False):
            if target == written:
                (target / "a.json").write_text("{}")
            raise RuntimeError("failed")
        assert target.is_dir()
    with output_dir(tmp_path / "fine", ["a.json"], [], overwrite=False):
        pass
    assert (tmp_path / "fine").is_dir()
