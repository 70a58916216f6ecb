"""Map untrusted object names and archive members to paths inside one folder.

Names with `..`, absolute paths, backslashes, drive letters or control
characters are refused, so nothing lands outside the destination (zip-slip).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problem(name: str) -> str | None:
    """What stops `name` from being a relative path inside a folder, or None."""
    if _CONTROL.search(name):
        return "holds a control character (such as a newline)"
    if "\\" in name:
        return "holds a backslash"
    parts = [part for part in name.split("/") if part]
    if not parts or name.startswith("/") or _DRIVE.match(name) or {".", ".."} & set(parts):
        return "could escape the dataset folder (empty, absolute, or with a . or .. part)"
    return None


def safe_relative_path(name: str) -> PurePosixPath | None:
    """The name as a relative POSIX path, or None when it cannot be one (see name_problem)."""
    if name_problem(name):
        return None
    return PurePosixPath(*[part for part in name.split("/") if part])


def resolve_inside(root: Path, relative: PurePosixPath) -> Path:
    """Joins root and relative, and checks the result is still under root."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"{relative} resolves outside {root}")
    return target


MAX_COMPONENT_BYTES = 200  # file systems cap a name at 255 bytes; leave room for suffixes


class LocalNames:
    """Unique, deterministic local paths for object or member names, given in sorted order.

    A name is kept as its path when it can be one. A name with a component too long
    for a file system, or one that clashes with an earlier file or folder (`x.png`
    and `x.png/y.png`), lands at the top under `~<hash>_<tail>` instead; the reason
    is returned so that it can be counted.
    """

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()

    def place(self, relative: PurePosixPath) -> tuple[PurePosixPath, str | None]:
        reason = None
        if any(len(part.encode()) > MAX_COMPONENT_BYTES for part in relative.parts):
            reason = "renamed_long_name"
        elif self._clashes(relative):
            reason = "renamed_name_clash"
        path = relative if reason is None else self._flat(relative, 0)
        attempt = 0
        while self._clashes(path):
            attempt += 1
            path = self._flat(relative, attempt)
        self.files.add(path.as_posix())
        self.dirs.update(parent.as_posix() for parent in path.parents if parent.parts)
        return path, reason

    def _clashes(self, path: PurePosixPath) -> bool:
        text = path.as_posix()
        return (
            text in self.files
            or text in self.dirs
            or any(parent.as_posix() in self.files for parent in path.parents if parent.parts)
        )

    @staticmethod
    def _flat(relative: PurePosixPath, attempt: int) -> PurePosixPath:
        digest = hashlib.sha256(f"{relative.as_posix()}#{attempt}".encode()).hexdigest()[:16]
        tail = relative.name.encode()[-80:].decode(errors="ignore")
        return PurePosixPath(f"~{digest}_{tail}")
