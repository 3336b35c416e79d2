"""One exception hierarchy for what a user can get wrong, so callers catch ours, not GDAL's."""

from __future__ import annotations


class BandfusionError(Exception):
    """A problem with the user's input; the message names the file and the problem in one line.

    The CLI prints it without a traceback and exits with `exit_code`. `setting` names the
    argument (of ours) that would fix the problem, where one would: the message then ends with
    it in brackets, which the CLI shows as the flag that sets it.
    """

    exit_code = 2

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message if setting is None else f"{message} ({setting})")
        self.setting = setting

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle as the message and attributes, whatever a subclass's constructor takes, so
        an error raised in a worker process (a fit run side by side) arrives whole."""
        return (_restore, (type(self), self.args, self.__dict__))


class SceneError(BandfusionError):
    """An input raster is missing, unreadable, or does not fit with the other inputs."""


class LabelError(BandfusionError):
    """Labels are unreadable, do not overlap the scene, or hold no usable pixels."""


class ModelFileError(BandfusionError):
    """A model file is missing, corrupt, tampered with, unsafe, or does not fit the scene."""


class OutputError(BandfusionError):
    """An output path cannot be written (missing directory, read-only, disk full)."""


class SettingError(BandfusionError):
    """A setting (an argument of ours) that cannot be honoured: `setting` names the argument,
    `value` is what it was given and `problem` says why, in the engine's terms.

    The message reads `setting=value: problem`; the CLI shows `--flag value: problem` instead,
    so neither the engine nor the Python API ever speaks of command-line flags.
    """

    def __init__(self, setting: str, value: object, problem: str) -> None:
        super().__init__(f"{setting}={value}: {problem}")
        self.setting, self.value, self.problem = setting, value, problem


class DeviceError(SettingError):
    """A device that is not one, or CUDA asked for where this machine has none."""

    def __init__(self, value: str, problem: str) -> None:
        super().__init__("device", value, problem)


def _restore(
    kind: type[BandfusionError], args: tuple[object, ...], state: dict[str, object]
) -> BandfusionError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


class BandfusionWarning(UserWarning):
    """Something worth knowing that does not stop the job (no CRS, all-nodata scene)."""


def first_line(error: BaseException, *, typed: bool = False) -> str:
    """The first line of `error`'s message, for one-line reasons; its type's name if it has none.

    With `typed`, errors other than ours are prefixed with their type ("OSError: ..."), as the
    CLI shows them: a bare "No such file" says less than it should outside our own messages.
    """
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    if not line:
        return type(error).__name__
    if typed and not isinstance(error, BandfusionError):
        return f"{type(error).__name__}: {line}"
    return line
