"""A trader's own strategy, from a Python file: `path/to/file.py:ClassName`.

The file is imported as a module of its own (once per process and file version, so sweep
worker processes load it too), and the class must subclass `omc.floor.strategy.Strategy`.
A class that keeps the base `name` is named after itself. Every problem — no such file, no
such class, not a `Strategy`, a syntax error, an error while importing — is one
`StrategyFileError` line.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from omc.floor.strategy import Strategy


class StrategyFileError(ValueError):
    """A strategy file could not be loaded (the message says why, in one line)."""


def is_file_spec(name: str) -> bool:
    """Whether `name` names a strategy file (`….py:Class`) rather than a registered one."""
    path = name.rpartition(":")[0] if ":" in name else name
    return path.endswith(".py")


_LOADED: dict[tuple[str, int], ModuleType] = {}


def _module(path: Path) -> ModuleType:
    key = (str(path), path.stat().st_mtime_ns)
    if key in _LOADED:
        return _LOADED[key]
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    mod_name = f"omc_strategy_file_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise StrategyFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # pickling and dataclasses find the module by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(mod_name, None)
        raise StrategyFileError(f"{path}, line {exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise StrategyFileError(f"{path} failed to import: {type(exc).__name__}: {exc}") from None
    _LOADED[key] = module
    return module


def _strategies_in(module: ModuleType) -> list[str]:
    return sorted(
        n
        for n, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, Strategy)
        and obj is not Strategy
        and obj.__module__ == module.__name__
    )


def load_strategy_class(spec: str) -> type[Strategy]:
    """The `Strategy` subclass named by `path/to/file.py:ClassName`."""
    text, sep, cls_name = spec.rpartition(":")
    if not sep:
        text, cls_name = spec, ""
    path = Path(text).expanduser()
    if not path.is_file():
        raise StrategyFileError(f"strategy file {text} not found")
    module = _module(path.resolve())
    found = _strategies_in(module)
    if not cls_name:
        hint = f"e.g. {text}:{found[0]}" if found else "it defines no Strategy subclass"
        raise StrategyFileError(f"--strategy {spec}: name the class as FILE.py:ClassName ({hint})")
    obj = getattr(module, cls_name, None)
    if obj is None:
        known = ", ".join(found) or "none"
        raise StrategyFileError(f"{text} has no class {cls_name!r} (its strategies: {known})")
    if not (inspect.isclass(obj) and issubclass(obj, Strategy)):
        raise StrategyFileError(
            f"{text}:{cls_name} is not a strategy: subclass omc.floor.strategy.Strategy"
        )
    if inspect.isabstract(obj):
        raise StrategyFileError(f"{text}:{cls_name} is abstract: it must implement on_bar(ctx)")
    if obj.name == Strategy.name:
        obj.name = cls_name
    return obj
