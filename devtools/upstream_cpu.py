"""Upstream's own `Trainer`, made to run on a CPU, for use as a test oracle and baseline only.

The module source is loaded with every CUDA call rewritten to the CPU
(`.cuda(self.rank)` -> `.cpu()`, the `cuda:` device -> `cpu`) and the import-time
assert removed. Run it in a separate process: it registers itself as
`lightweight_gan.lightweight_gan`.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

REWRITES = (
    ("assert torch.cuda.is_available(), 'You need to have an Nvidia GPU with CUDA installed.'", ""),
    ("torch.device(f'cuda:{self.rank}')", "torch.device('cpu')"),
    (".cuda(self.rank)", ".cpu()"),
    ("self.cuda(rank)", "self.cpu()"),
    ("partial(autocast, 'cuda')", "partial(autocast, 'cpu')"),
)


def load_upstream_on_cpu() -> ModuleType:
    """Imports lightweight_gan with its CUDA calls redirected to the CPU."""
    package_spec = importlib.util.find_spec("lightweight_gan")
    package = importlib.util.module_from_spec(package_spec)
    sys.modules["lightweight_gan"] = package
    module_spec = importlib.util.find_spec("lightweight_gan.lightweight_gan")
    source = module_spec.loader.get_source("lightweight_gan.lightweight_gan")
    for old, new in REWRITES:
        if old not in source:
            raise RuntimeError(f"upstream changed: {old!r} not found")
        source = source.replace(old, new)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["lightweight_gan.lightweight_gan"] = module
    exec(compile(source, module_spec.origin, "exec"), module.__dict__)
    package_spec.loader.exec_module(package)
    return module
