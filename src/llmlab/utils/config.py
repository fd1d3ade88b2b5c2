"""Typed stage configs: dataclass <-> JSON, tolerant of older files.

Each stage owns one small dataclass (``TokenizerConfig``, ``ModelConfig``, ``TrainConfig``, ...). It is
written into the run folder as JSON and read back with ``config_from_dict``, which ignores keys that a newer
or older version added or removed (reporting them once) instead of failing on an old checkpoint.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass config (nested dataclasses included)."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type[T], data: dict[str, Any], *, source: str = "config", quiet: bool = False) -> T:
    """Build ``cls`` from ``data``: unknown keys are dropped (with a note on stderr), missing keys take the
    dataclass defaults, and nested dataclass fields are rebuilt recursively."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown and not quiet:
        print(f"note: {source}: ignoring unknown {cls.__name__} keys {unknown}", file=sys.stderr)
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            continue
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value, source=source, quiet=quiet)
        elif _is_tuple_hint(hint) and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _is_tuple_hint(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_tuple_hint(a) for a in typing.get_args(hint))
    return hint is tuple or origin is tuple


def override(cfg: T, **changes: Any) -> T:
    """A copy of ``cfg`` with the non-None ``changes`` applied (flags left unset keep the config's value)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})
