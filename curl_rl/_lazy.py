"""PEP 562 lazy attributes, shared by ``curl_rl`` and ``curl_rl.envs``: public names import their
module on first use, so importing the package stays cheap (no torch for ``curl-rl --help``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, namespace: dict[str, Any], lazy: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names ``lazy`` maps to their modules.

    :param package: the package's ``__name__`` (for the error message).
    :param namespace: the package's ``globals()``; a loaded name is stored there, so the next
        access is a plain attribute lookup.
    :param lazy: public name -> the module that defines it.
    :return: ``(__getattr__, __dir__)``.
    """

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *lazy])

    return __getattr__, __dir__
