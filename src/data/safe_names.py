"""Map untrusted object names and archive members to paths inside one folder.

Names with `..`, absolute paths, backslashes, drive letters or control
characters are refused, so nothing lands outside the destination (zip-slip).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relative_path(name: str) -> PurePosixPath | None:
    """The name as a relative POSIX path, or None when it could escape its folder."""
    if not name or _CONTROL.search(name) or "\\" in name or _DRIVE.match(name):
        return None
    if name.startswith("/"):
        return None
    parts = [part for part in name.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        return None
    return PurePosixPath(*parts)


def resolve_inside(root: Path, relative: PurePosixPath) -> Path:
    """Joins root and relative, and checks the result is still under root."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"{relative} resolves outside {root}")
    return target
