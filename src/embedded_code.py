"""Ship the project's own modules inside each compiled component.

`@dsl.component(embedded_artifact_path=...)` puts a base64 tarball of a folder
into the component's command and prepends its extraction root to `sys.path` at
run time, so `from src.x import y` works in any stock image with no image build.
The SDK's tarball carries file times and a gzip timestamp, which would make every
compile differ; we swap in a reproducible archive of the same files (sorted,
zero times, fixed owner), so `compiled/` is byte-stable across machines.
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import re
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

from kfp import dsl

SRC_ROOT = Path(__file__).resolve().parent
EXCLUDED_DIRS = frozenset({"components", "__pycache__"})
_ARCHIVE_LITERAL = re.compile(r"__KFP_EMBEDDED_ARCHIVE_B64 = '([A-Za-z0-9+/=]*)'")


def embedded_files(root: Path = SRC_ROOT) -> list[Path]:
    """The `src` modules that components import at run time, sorted."""
    return sorted(
        path
        for path in root.rglob("*.py")
        if not EXCLUDED_DIRS.intersection(path.relative_to(root).parts[:-1])
    )


@functools.cache
def reproducible_archive_b64() -> str:
    """A gzip'd tar of `src/` (without the KFP layer) that depends only on file contents."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in embedded_files():
            data = path.read_bytes()
            info = tarfile.TarInfo(name=f"src/{path.relative_to(SRC_ROOT).as_posix()}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    compressed = gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)
    return base64.b64encode(compressed).decode("ascii")


def _swap_archive(command: list[str], archive_b64: str) -> list[str]:
    swapped = []
    for part in command:
        if "__KFP_EMBEDDED_ARCHIVE_B64" in part:
            part, count = _ARCHIVE_LITERAL.subn(
                f"__KFP_EMBEDDED_ARCHIVE_B64 = '{archive_b64}'", part
            )
            if count != 1:
                raise RuntimeError(
                    "kfp's embedded-archive helper changed: update src/embedded_code.py"
                )
        swapped.append(part)
    return swapped


def project_component(*, base_image: str, packages: Iterable[str]) -> Callable:
    """Like `@dsl.component`, with the project's code embedded reproducibly."""

    def decorate(func: Callable):
        component = dsl.component(
            func,
            base_image=base_image,
            packages_to_install=list(packages),
            embedded_artifact_path=str(SRC_ROOT),
        )
        container = component.component_spec.implementation.container
        container.command = _swap_archive(list(container.command), reproducible_archive_b64())
        return component

    return decorate


def for_image(component, image: str | None):
    """The same component on a project image (code and packages inside): nothing installed at run time."""
    if image is None:
        return component
    return dsl.component(component.python_func, base_image=image, install_kfp_package=False)
