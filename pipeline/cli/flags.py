"""The engine's errors in the command line's words: a setting's flag instead of its argument.

The engine and the Python API name arguments (`precision=fp16: needs a CUDA device`); a user of
`bandfusion` typed flags, so an error that names the setting that would fix it is shown with
that flag (`--precision fp16: needs a CUDA device`). The table below is the only place that
knows both names.
"""

from __future__ import annotations

from bandfusion.errors import BandfusionError, SettingError

FLAGS = {
    "band_names": "--band-names",
    "band_roles": "--band-role",
    "bands": "--bands",
    "resolution": "--resolution",
    "device": "--device",
    "overwrite": "--overwrite",
    "out_dir": "--out-dir",
    "hidden": "--hidden",
    "bins": "--bins",
    "clip": "--clip",
    "norm": "--norm",
    "activation": "--activation",
    "learning_rate": "--lr",
    "mask": "--mask",
    "mask_kind": "--mask-kind",
    "precision": "--precision",
    "nodata": "--nodata",
    "trust_metadata": "--trust-metadata",
    "scheduler": "--scheduler",
}
"""Engine argument → the flag that sets it."""

HINTS = {"band_roles": "--band-role ROLE=BAND"}
"""How a flag is used, where its bare name says too little."""


def in_flags(error: BandfusionError) -> str:
    """`error`'s message as the CLI shows it: a bad setting as `--flag value: problem`; an error
    that another setting would fix ends with that setting's flag, `(--band-names)`, where the
    engine's message ends with its argument, `(band_names)`."""
    setting = error.setting or ""
    flag = FLAGS.get(setting)
    if flag is None:
        return str(error)
    if isinstance(error, SettingError):
        return f"{flag} {error.value}: {error.problem}"
    return str(error).removesuffix(f"({setting})") + f"({HINTS.get(setting, flag)})"
