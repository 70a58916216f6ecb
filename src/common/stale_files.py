"""Remove the temporary files that killed writers leave behind.

A writer names its temporary `.NAME.tmp-PID` (src/common/atomic_files.py,
src/common/image_array_writer.py) and renames or deletes it when it finishes;
one that is killed first leaves it forever, often as large as what it wrote.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_TEMPORARY = re.compile(r"\..+\.tmp-(\d+)")


def writer_is_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(
    folder: Path, *, recursive: bool = False, include_own: bool = False
) -> list[Path]:
    """Deletes the `.NAME.tmp-PID` files in `folder` whose writer is gone; returns them.

    Args:
        folder: where to look (a missing folder holds nothing).
        recursive: also look in every folder below it.
        include_own: treat this process's own temporaries as stale too. Pass it when
            this process writes nothing there yet: a fresh container may give this
            process the PID that the killed writer had.
    """
    pattern = "**/.*.tmp-*" if recursive else ".*.tmp-*"
    removed = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        match = _TEMPORARY.fullmatch(path.name)
        if not match or not path.is_file():
            continue
        pid = int(match.group(1))
        if writer_is_alive(pid) and not (include_own and pid == os.getpid()):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
