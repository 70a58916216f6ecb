"""Temporary files of killed writers go; those of live writers stay."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from src.common.atomic_files import TEMPORARY_MARK
from src.common.stale_files import remove_stale_temporaries

ROOT = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    # Given temporaries of a finished process, of a running one and of this one, and other files
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".checkpoint.pt{TEMPORARY_MARK}{dead_pid()}"
        live = tmp_path / f".checkpoint.pt{TEMPORARY_MARK}{sleeper.pid}"
        own = tmp_path / f".index.json{TEMPORARY_MARK}{os.getpid()}"
        others = [tmp_path / "checkpoint.pt", tmp_path / ".hidden", tmp_path / "x.tmp-1"]
        for path in [dead, live, own, *others]:
            path.write_bytes(b"data")
        # When the folder is cleaned
        removed = remove_stale_temporaries(tmp_path)
        # Then only the dead writer's file is gone
        assert removed == [dead]
        assert sorted(tmp_path.iterdir()) == sorted([live, own, *others])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_own_temporaries_go_only_when_asked_and_subfolders_only_when_recursive(tmp_path):
    (tmp_path / "sub").mkdir()
    own = tmp_path / f".model.pt{TEMPORARY_MARK}{os.getpid()}"
    below = tmp_path / "sub" / f".images.npy{TEMPORARY_MARK}{dead_pid()}"
    own.write_bytes(b"x")
    below.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path, include_own=True) == [own]
    assert remove_stale_temporaries(tmp_path, recursive=True) == [below]


def test_a_save_killed_midway_leaves_a_temporary_that_is_then_removed(tmp_path):
    # Given an atomic write killed (SIGKILL) before it finished
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from src.common.atomic_files import atomic_open\n"
        "with atomic_open(Path(sys.argv[1])) as handle:\n"
        "    handle.write(b'half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "result.json")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout.readline() == "writing\n"
    writer.kill()
    writer.wait()
    writer.stdout.close()
    (left,) = tmp_path.iterdir()
    # When the folder is cleaned, then the temporary is gone
    assert remove_stale_temporaries(tmp_path) == [left]
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_other_programs_are_never_touched(tmp_path):
    # Given files that look temporary, written by other programs whose process is gone
    dead = dead_pid()
    decoys = [
        tmp_path / f".precious.db.tmp-{dead}",
        tmp_path / f".checkpoint.pt.tmp-{dead}",
        tmp_path / f"lwgan-tmp-{dead}",
        tmp_path / f".x{TEMPORARY_MARK}{dead}.bak",
    ]
    (tmp_path / "sub").mkdir()
    decoys.append(tmp_path / "sub" / f".notes.txt.tmp-{dead}")
    for path in decoys:
        path.write_bytes(b"someone's data")
    # When the folder is cleaned, recursively, then every one of them is still there
    assert remove_stale_temporaries(tmp_path, recursive=True, include_own=True) == []
    assert all(path.read_bytes() == b"someone's data" for path in decoys)


def test_a_missing_folder_holds_nothing(tmp_path: Path):
    assert remove_stale_temporaries(tmp_path / "absent", recursive=True) == []
