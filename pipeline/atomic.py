"""Atomic replacement of files and directories: one temporary-name rule, one cleanup.

Every output bandfusion writes (maps, JSON, PNG, the batch manifest, model directories) is
first written under a temporary name beside its target, and renamed onto the target only once
complete, so a crash, an interrupt or a full disk never leaves a partial output behind. The
temporary name is `.NAME.bandfusion-tmp-<12 hex digits>` followed by NAME's suffix, and
scratch files a writer derives from it (GDAL's side files, a COG's intermediate) start with
the same text. No output of ours takes that form, so `sweep_temporaries` deletes what a killed
writer left without ever touching a user's file.

It lives at the package root, beside `errors`, because two layers that may not import each
other need the same rule: `bandfusion.models` saves model directories, and `bandfusion.io`
writes every other file (through `bandfusion.io.atomic`, which adds the checks and error
messages of output files). It imports only the standard library.
"""

from __future__ import annotations

import secrets
import shutil
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_MARK = ".bandfusion-tmp-"
"""What every temporary name holds between the target's name and its random part."""


def temporary_path(target: Path) -> Path:
    """A fresh hidden name beside `target`, on its file system so that renames are atomic."""
    return target.with_name(f".{target.name}{TEMPORARY_MARK}{secrets.token_hex(6)}{target.suffix}")


def temporary_owner(name: str) -> str | None:
    """The name of the target that the temporary name `name` was made for; None for any
    other name."""
    if not name.startswith(".") or TEMPORARY_MARK not in name:
        return None
    return name[1:].rpartition(TEMPORARY_MARK)[0]


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`, renamed onto `target` if the block succeeds.

    The block creates a file or a directory at the yielded path. A file replaces `target` in
    one rename; a directory replaces an existing one by setting it aside under another
    temporary name, then deleting it. Whatever happened, everything whose name starts with
    the temporary name (scratch files derived from it, GDAL's side files) is removed after.
    """
    tmp = temporary_path(target)
    try:
        yield tmp
        _move_into_place(tmp, target)
    finally:
        _remove(tmp.parent, tmp.name.removesuffix(target.suffix))


def sweep_temporaries(targets: Iterable[Path]) -> None:
    """Delete the temporary files and directories that killed writers left beside `targets`,
    for a target or for one of its side files, named TARGET.MORE (a map's `.aux.xml`); never
    the targets themselves."""
    names: defaultdict[Path, set[str]] = defaultdict(set)
    for target in targets:
        names[target.parent].add(target.name)
    for folder, outputs in names.items():
        sides = tuple(f"{name}." for name in outputs)
        for entry in folder.iterdir():
            owner = temporary_owner(entry.name)
            if (
                entry.name not in outputs
                and owner
                and (owner in outputs or owner.startswith(sides))
            ):
                _delete(entry)


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename `tmp` onto `target`; a directory already there is set aside, then deleted."""
    if not (tmp.is_dir() and target.exists()):
        tmp.replace(target)
        return
    aside = temporary_path(target)
    target.replace(aside)
    try:
        tmp.replace(target)
    except OSError:
        aside.replace(target)
        raise
    _delete(aside)


def _remove(folder: Path, prefix: str) -> None:
    """Delete every entry of `folder` whose name starts with `prefix`."""
    for entry in folder.iterdir():
        if entry.name.startswith(prefix):
            _delete(entry)


def _delete(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
