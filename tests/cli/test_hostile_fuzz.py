"""Fuzzing the command line with hostile paths and numbers (issue 18): special files (a FIFO,
/dev/null, a directory, a dangling symlink) as any input, and every numeric option of every
command out of its range. Each ends with exit 2 and one line, never a hang or a traceback."""

from __future__ import annotations

import math
import os
from pathlib import Path

import click
import pytest
from bandfusion.cli import SUBCOMMANDS, cli
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzzing import case_dir, fuzz, run_cli
from tests.helpers import random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    scene = open_scene(data_dir / S2)
    return save_model(random_model(scene, [0, 1]), tmp_path_factory.mktemp("m") / "model")


# ---------------------------------------------------------------------------------------------
# special files as inputs

SPECIAL_KINDS = ("fifo", "/dev/null", "directory", "dangling symlink")
ROLES = ("scene", "labels", "model", "scene list")


def make_special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "/dev/null":
        path.symlink_to("/dev/null")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(path.with_name("nowhere"))


def command_with(role: str, path: Path, folder: Path, scene: Path, model: Path) -> list[str]:
    """The command line that reads `path` in `role`."""
    return {
        "scene": ["predict", str(path), "-m", str(model), "-o", str(folder / "map.tif")],
        "labels": ["train", str(scene), "--labels", str(path), "-o", str(folder / "m")],
        "model": ["predict", str(scene), "-m", str(path), "-o", str(folder / "map.tif")],
        "scene list": ["batch", str(path), "-m", str(model), "--out-dir", str(folder / "maps")],
    }[role]


@pytest.mark.timeout(300)  # a hang is the failure this looks for
@fuzz(100)
@given(
    kind=st.sampled_from(SPECIAL_KINDS),
    role=st.sampled_from(ROLES),
    suffix=st.sampled_from([".tif", ".csv", ".json", ""]),
)
def test_special_files_as_inputs_are_one_line_and_exit_2(
    scratch: Path, data_dir: Path, model_dir: Path, kind: str, role: str, suffix: str
):
    if role == "scene list":  # a batch reads a list by its suffix; a .tif is a scene of it
        suffix = ".json" if suffix == ".json" else ".csv"
    event(f"{kind} as {role}")
    with case_dir(scratch) as folder:
        path = folder / f"input{suffix}"
        make_special(kind, path)
        code, err = run_cli([*command_with(role, path, folder, data_dir / S2, model_dir), "-q"])
        lines = err.strip().splitlines()
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("bandfusion: error: "), err
        assert path.name in lines[0], err
        assert [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()] == []


# ---------------------------------------------------------------------------------------------
# every numeric option out of its range


def numeric_options() -> list[tuple[str, str, click.ParamType]]:
    """(command, flag, type) of every option of every command that takes a number, read from
    the click commands themselves, so that a new option is fuzzed as soon as it exists."""
    options = []
    for name in SUBCOMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        for param in command.params:
            if isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
                options.append((name, max(param.opts, key=len), param.type))
    return options


NUMERIC_OPTIONS = numeric_options()


def out_of_range(kind: click.ParamType) -> st.SearchStrategy[str]:
    """Values `kind` must refuse, as typed on a command line: beyond a bound it has, and for
    floats NaN and the infinities (which pass every bound of a plain click.FloatRange)."""
    integer = isinstance(kind, click.types.IntParamType)
    low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    below_open, above_open = getattr(kind, "min_open", False), getattr(kind, "max_open", False)
    choices: list[st.SearchStrategy[float]] = []
    if integer:
        if low is not None:
            choices.append(st.integers(max_value=low if below_open else low - 1))
        if high is not None:
            choices.append(st.integers(min_value=high if above_open else high + 1))
    else:
        finite = {"allow_nan": False, "allow_infinity": False}
        if low is not None:
            choices.append(st.floats(max_value=low, exclude_max=not below_open, **finite))
        if high is not None:
            choices.append(st.floats(min_value=high, exclude_min=not above_open, **finite))
        choices.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    assert choices, f"{kind!r} accepts every integer: give the option a click.IntRange"
    return st.one_of(choices).map(repr)


@pytest.mark.parametrize(
    ("command", "flag", "kind"),
    NUMERIC_OPTIONS,
    ids=[f"{command} {flag}" for command, flag, _ in NUMERIC_OPTIONS],
)
@fuzz(8)
@given(data=st.data())
def test_a_number_out_of_range_is_one_line_naming_the_flag(
    command: str, flag: str, kind: click.ParamType, data: st.DataObject
):
    value = data.draw(out_of_range(kind), label="value")
    code, err = run_cli([command, flag, value])
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("bandfusion: error: "), err
    assert f"'{flag}'" in lines[0], err
