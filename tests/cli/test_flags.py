"""Engine errors name arguments; the CLI shows the flag that sets them instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from bandfusion.cli import main
from bandfusion.cli.flags import FLAGS, in_flags
from bandfusion.errors import BandfusionError, DeviceError, SceneError, SettingError
from bandfusion.models.checkpoint import save_model

from tests.helpers import random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


def test_a_bad_setting_is_shown_as_its_flag_and_value() -> None:
    error = SettingError("precision", "fp16", "needs a CUDA device")
    assert str(error) == "precision=fp16: needs a CUDA device"
    assert in_flags(error) == "--precision fp16: needs a CUDA device"
    assert in_flags(DeviceError("cuda:3", "CUDA is not available")) == (
        "--device cuda:3: CUDA is not available"
    )


def test_an_error_another_setting_would_fix_ends_with_that_flag() -> None:
    error = SceneError("a.tif: bands differ; name the scene's bands", setting="band_names")
    assert str(error) == "a.tif: bands differ; name the scene's bands (band_names)"
    assert in_flags(error) == "a.tif: bands differ; name the scene's bands (--band-names)"
    roles = SceneError("a.tif: no band for role 'green'", setting="band_roles")
    assert in_flags(roles).endswith("(--band-role ROLE=BAND)")


def test_errors_without_a_known_setting_are_shown_as_they_are() -> None:
    assert in_flags(BandfusionError("x.tif: no such file")) == "x.tif: no such file"
    assert in_flags(BandfusionError("odd", setting="not_a_flag")) == "odd (not_a_flag)"


@pytest.mark.parametrize("setting", sorted(FLAGS))
def test_every_flag_in_the_table_is_a_real_option(setting: str) -> None:
    from bandfusion.cli import cli

    commands = [cli.get_command(None, name) for name in cli.list_commands(None)]  # type: ignore[arg-type]
    options = {o for c in commands if c for p in c.params for o in getattr(p, "opts", [])}
    assert FLAGS[setting] in options


def test_band_mismatch_through_the_cli_names_the_flag(
    tmp_path: Path, data_dir: Path, scene, capsys: pytest.CaptureFixture[str]
) -> None:
    other_bands = scene.isel(band=[0, 1]).assign_coords(band=["X1", "X2"])
    model = save_model(random_model(other_bands, [0, 1]), tmp_path / "m")
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(data_dir / S2), "-m", str(model), "-o", str(tmp_path / "o.tif")])
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bandfusion: error: ") and "\n" not in err
    assert err.endswith("use a model trained on these bands (--band-names)")
