"""Call a component's function as the pipeline calls it."""

from __future__ import annotations

import inspect
from typing import Any

from src.params.schema import local_defaults


def run_component(component, **given: Any) -> Any:
    """Every pipeline parameter the component takes (it declares no defaults for them: the schema
    does) at its local default, overridden by `given`."""
    names = inspect.signature(component.python_func).parameters
    defaults = {name: value for name, value in local_defaults().items() if name in names}
    return component.python_func(**{**defaults, **given})
