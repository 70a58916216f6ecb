"""Writing the downloaded set's tar shards (reading them: src/data/layout.py)."""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path

from src.data.layout import SHARD_BYTES, SHARDS_DIR, output_write_error


class ShardWriter:
    """Appends files to tar shards of about SHARD_BYTES each; safe to call from many threads.

    Members land in the order `add` is called; `add` returns where the bytes start.
    A failed write (a full disk) is an OutputWriteError, kept in `failed` and raised
    again by every later `add`: nothing more is written. `needed` is the size the
    message quotes.
    """

    def __init__(self, shards: Path, needed: int = 0) -> None:
        shards.mkdir(parents=True, exist_ok=True)
        self.shards, self.number, self.archive = shards, -1, None
        self.lock = threading.Lock()
        self.needed, self.failed = needed, None

    def add(self, relative: str, data: bytes | Path) -> tuple[str, int]:
        """Stores `data` (bytes, or a file's content) as `relative`; returns (shard, offset)."""
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        info = tarfile.TarInfo(relative)
        info.size = size
        with self.lock:
            if self.failed:
                raise self.failed
            try:
                with _readable(data) as source:
                    archive = self._current(size)
                    archive.addfile(info, source)
            except OSError as error:
                self.failed = output_write_error(
                    error, self.shards / Path(self.name).name, self.needed
                )
                raise self.failed from error
            # addfile wrote header, data and padding to a 512-byte block: step back over both.
            return self.name, archive.offset - size - (-size % tarfile.BLOCKSIZE)

    @property
    def name(self) -> str:
        return f"{SHARDS_DIR}/shard-{self.number:05d}.tar"

    def _current(self, size: int) -> tarfile.TarFile:
        if self.archive is None or (
            self.archive.offset and self.archive.offset + size > SHARD_BYTES
        ):
            self.close()
            self.number += 1
            path = self.shards / Path(self.name).name
            self.archive = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 (close() ends it)
        return self.archive

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
            self.archive = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, error_type: type | None, *_: object) -> None:
        try:
            self.close()
        except OSError:
            if error_type is None:
                raise  # else the shard is broken already and the first failure is on its way


def _readable(data: bytes | Path):
    return io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")


def pack_shards(folder: Path, relatives: list[str], shards: Path) -> list[tuple[str, int]]:
    """Copies each file `folder/relative` into tar shards in `shards/`; returns (shard, offset)."""
    with ShardWriter(shards) as writer:
        return [writer.add(relative, folder / relative) for relative in relatives]
