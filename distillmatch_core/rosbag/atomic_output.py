"""Outputs that appear under their final name only once complete.

A bag or report folder is built as ``.<name>.partial-<random>/<name>`` (a
hidden sibling holding a folder of the final name, because rosbag2 names its
storage file after the bag folder) and renamed into place at the end; an
exception or Ctrl-C removes the partial folder. A killed process can leave
the hidden ``.partial`` folder behind, but never something under the final
name that looks like a finished result. Renames within one directory are
atomic on POSIX file systems.
"""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from distillmatch_core.rosbag.bag_errors import OutputExistsError


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_output_path(final: Path, overwrite: bool, protected: Optional[Path] = None) -> None:
    """Raises OutputExistsError if ``final`` exists (and is not an empty folder) without ``overwrite``.

    ``protected`` (the input bag) may never be the output or contain it, even with ``overwrite``.
    """
    final = Path(final).absolute()
    if protected is not None:
        protected = Path(protected).absolute()
        if final == protected or protected in final.parents or final in protected.parents:
            raise OutputExistsError(f"output {final} would overwrite or sit inside the input {protected}")
    if final.exists() and not overwrite and not _is_empty_dir(final):
        raise OutputExistsError(f"{final} exists; pass --overwrite to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def atomic_output_path(final: Path, overwrite: bool = False, protected: Optional[Path] = None,
                       create: bool = False) -> Iterator[Path]:
    """Yields a temporary path next to ``final``; on success it replaces ``final``.

    ``create`` makes the temporary path a folder first (callers such as the
    rosbags Writer that create it themselves pass False).
    """
    final = Path(final).absolute()
    check_output_path(final, overwrite, protected)
    staging = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    temporary = staging / final.name
    try:
        if create:
            temporary.mkdir()
        yield temporary
        if not temporary.exists():
            raise RuntimeError(f"nothing was written to {temporary}")
        _replace(temporary, final)
    finally:
        _remove(staging)


def _replace(temporary: Path, final: Path) -> None:
    if not final.exists():
        os.replace(temporary, final)
        return
    # Move the old output aside first so that at every instant ``final`` is either the
    # complete old output or the complete new one.
    trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(final, trash)
    try:
        os.replace(temporary, final)
    except BaseException:
        os.replace(trash, final)
        raise
    _remove(trash)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
