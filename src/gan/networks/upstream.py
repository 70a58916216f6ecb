"""Import lightweight-gan on any device.

lightweight-gan 1.2.1 asserts `torch.cuda.is_available()` when its module is
imported, although its networks, losses and `LightweightGAN` container run on
any device. This loader imports the real package with that one top-level
statement removed (an AST edit at load time); nothing in torch is patched and
every other line runs as published. With CUDA present it is a plain import.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import threading
from types import ModuleType

PACKAGE = "lightweight_gan"
MODULE = "lightweight_gan.lightweight_gan"
_lock = threading.Lock()


def _is_cuda_assert(node: ast.stmt) -> bool:
    return isinstance(node, ast.Assert) and "cuda.is_available" in ast.unparse(node.test)


def _load_without_cuda_assert() -> ModuleType:
    package_spec = importlib.util.find_spec(PACKAGE)
    if package_spec is None or package_spec.submodule_search_locations is None:
        raise ImportError("lightweight-gan is not installed: pip install lightweight-gan==1.2.1")
    package = importlib.util.module_from_spec(package_spec)
    sys.modules[PACKAGE] = package  # sub-imports resolve before the package body runs
    try:
        module_spec = importlib.util.find_spec(MODULE)
        source = module_spec.loader.get_source(MODULE)
        tree = ast.parse(source, filename=module_spec.origin)
        removed = [node for node in tree.body if _is_cuda_assert(node)]
        tree.body = [node for node in tree.body if not _is_cuda_assert(node)]
        if len(removed) != 1:
            raise ImportError(
                f"expected one CUDA assert in {module_spec.origin}, found {len(removed)}: "
                "this lightweight-gan version is not supported; pin lightweight-gan==1.2.1"
            )
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[MODULE] = module
        exec(compile(tree, module_spec.origin, "exec"), module.__dict__)
        package_spec.loader.exec_module(package)
    except BaseException:
        sys.modules.pop(PACKAGE, None)
        sys.modules.pop(MODULE, None)
        raise
    return module


def upstream() -> ModuleType:
    """The `lightweight_gan.lightweight_gan` module, importable with or without CUDA."""
    with _lock:
        loaded = sys.modules.get(MODULE)
        if loaded is not None and hasattr(loaded, "Trainer"):
            return loaded
        import torch

        if torch.cuda.is_available():
            return importlib.import_module(MODULE)
        return _load_without_cuda_assert()
