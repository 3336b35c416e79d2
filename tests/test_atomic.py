"""One rule for temporary names, one writer for files and directories, one sweep of leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest
from bandfusion.atomic import (
    TEMPORARY_MARK,
    replacing,
    sweep_temporaries,
    temporary_owner,
    temporary_path,
)


def test_temporary_names_are_hidden_marked_and_keep_the_suffix(tmp_path: Path) -> None:
    tmp = temporary_path(tmp_path / "map.tif")
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(f".map.tif{TEMPORARY_MARK}") and tmp.suffix == ".tif"
    assert temporary_owner(tmp.name) == "map.tif"
    assert temporary_owner(f"{tmp.name}.aux.xml") == "map.tif"
    assert temporary_path(tmp_path / "map.tif") != tmp
    for name in ["map.tif", ".map.tif", ".map.tif.0123456789ab.tmp.tif", "bandfusion-tmp-x"]:
        assert temporary_owner(name) is None


def test_a_directory_replaces_the_previous_one_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "model"
    for content in ("old", "new"):
        with replacing(target) as staged:
            staged.mkdir()
            (staged / "file").write_text(content)
    assert (target / "file").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_write_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("before")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_text("half")
        tmp.with_name(f"{tmp.stem}.scratch").mkdir()
        raise RuntimeError("killed")
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_sweep_removes_only_temporaries_of_the_targets(tmp_path: Path) -> None:
    targets = [tmp_path / "a.tif", tmp_path / "model"]
    left = [temporary_path(targets[0]), temporary_path(targets[1])]
    left[0].write_bytes(b"II*\x00 cut")
    left[1].mkdir()
    (left[1] / "weights.safetensors").write_bytes(b"")
    kept = [".a.tif", ".hidden", "a.tif", temporary_path(tmp_path / "other.tif").name]
    for name in kept:
        (tmp_path / name).write_text("user file")
    sweep_temporaries(targets)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_the_sweep_never_deletes_a_target_whose_name_looks_temporary(tmp_path: Path) -> None:
    """An output named like another output's temporary is an output: it is kept."""
    plain = tmp_path / "map.tif"
    odd = temporary_path(plain)
    odd.write_bytes(b"a real map, oddly named")
    plain.write_bytes(b"a map")
    sweep_temporaries([plain, odd])
    assert odd.read_bytes() == b"a real map, oddly named"
    sweep_temporaries([plain])
    assert not odd.exists() and plain.exists()
