"""Remove the temporary files that killed writers leave behind.

A writer names its temporary `.NAME.lwgan-tmp-PID` (atomic_files.temporary_path)
and renames or deletes it when it finishes; one that is killed first leaves it
forever, often as large as what it wrote. Only names of that form are touched:
another program's `.NAME.tmp-PID` is its own business.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from src.common.atomic_files import TEMPORARY_MARK

OWNER_MARK = ".lwgan-checkpoints"  # in a checkpoint folder: the project's own, temporaries too
_TEMPORARY = re.compile(r"\..+" + re.escape(TEMPORARY_MARK) + r"(\d+)")


def writer_is_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale_temporaries(
    folder: Path, *, recursive: bool = False, include_own: bool = False
) -> list[Path]:
    """Deletes the project's temporaries in `folder` whose writer is gone; returns them.

    Args:
        folder: where to look (a missing folder holds nothing).
        recursive: also look in every folder below it.
        include_own: treat this process's own temporaries as stale too. Pass it when
            this process writes nothing there yet: a fresh container may give this
            process the PID that the killed writer had.
    """
    pattern = f"{'**/' if recursive else ''}.*{TEMPORARY_MARK}*"
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
