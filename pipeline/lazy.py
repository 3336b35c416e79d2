"""Package attributes imported from their submodules on first use.

`import bandfusion` then costs only what the caller touches: `bandfusion predict` never loads
scikit-learn or matplotlib (about 100 MB of resident memory); a notebook that calls
`bandfusion.explain` loads them when it does.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from typing import Any, cast


class LazyPackage(types.ModuleType):
    """A package whose name N is imported from its submodule `lazy_exports[N]` when first used."""

    lazy_exports: Mapping[str, str]

    def __getattr__(self, name: str) -> Any:
        """Called only for names not yet set: import the submodule that exports `name`."""
        exports = self.__dict__.get("lazy_exports", {})
        if name not in exports:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], self.__name__), name)
        setattr(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        """The import system binds each submodule on its package once loaded; where a lazy name
        is also a submodule's (`bandfusion.train` the module and the function), the function
        is bound instead, as an eager `from .train import train` would have left it."""
        exports = self.__dict__.get("lazy_exports", {})
        if name in exports and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({*self.__dict__, *self.__dict__.get("lazy_exports", {})})


def make_lazy(package: str, exports: Mapping[str, str]) -> None:
    """Turn the loaded module `package` into a LazyPackage exporting `exports` (name → module)."""
    module = sys.modules[package]
    module.__class__ = LazyPackage
    cast(LazyPackage, module).lazy_exports = dict(exports)
