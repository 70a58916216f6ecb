"""Reading the Dataset layouts back in tests: the cleansed array and the download's shards."""

from __future__ import annotations

import tarfile
from pathlib import Path

from PIL import Image

from src.common.image_array import load_array


def cleansed_images(folder: Path) -> dict[str, Image.Image]:
    """Each kept image of a cleansed set, by its output name."""
    array, names = load_array(folder)
    return {name: Image.fromarray(array[i].squeeze(-1) if array.shape[-1] == 1 else array[i]) for i, name in enumerate(names)}  # fmt: skip


def shard_members(dataset: Path) -> dict[str, bytes]:
    """Every file packed in a downloaded set's shards, by its path in the set."""
    members = {}
    for shard in sorted((dataset / "shards").glob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                members[member.name] = archive.extractfile(member).read()
    return members


def dataset_files(root: Path) -> set[str]:
    """Files below `root` as a person thinks of them: each packed image as `<set>/images/<path>`.

    The shards themselves are not listed; everything else is, by its path.
    """
    found = set()
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(root)
        if path.suffix == ".tar" and path.parent.name == "shards":
            base = relative.parent.parent / "images"
            with tarfile.open(path) as archive:
                found |= {(base / name).as_posix() for name in archive.getnames()}
        else:
            found.add(relative.as_posix())
    return found


def raw_dataset(source: Path, dest: Path, pattern: str = "*") -> Path:
    """A downloaded-set folder (shards and manifest) holding the files of `source`, as the download step writes it."""
    import json

    from src.data.layout import MANIFEST_NAME, SHARDS_DIR
    from src.data.shard_writer import pack_shards

    relatives = sorted(
        p.relative_to(source).as_posix() for p in source.rglob(pattern) if p.is_file()
    )
    placed = pack_shards(source, relatives, dest / SHARDS_DIR)
    objects = [
        {
            "name": r,
            "path": r,
            "size": (source / r).stat().st_size,
            "shard": shard,
            "offset": offset,
        }
        for r, (shard, offset) in zip(relatives, placed, strict=True)
    ]
    (dest / MANIFEST_NAME).write_text(json.dumps({"objects": objects}))
    return dest
