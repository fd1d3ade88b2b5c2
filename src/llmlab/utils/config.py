"""Typed configs: one small dataclass per stage or command, its CLI flags, config files, and JSON round trips.

A stage's dataclass states its defaults once; each field's help text (and choices, a flag name when it is not
the field's) sits in the field's metadata, written with ``option(...)``, and the class checks its own values
(``Checked``: choices, plus the class's ``problems()``) whenever it is built. From that one class:

* ``add_config_flags(parser, cls)``: one kebab-case flag per field (``max_new_tokens`` -> ``--max-new-tokens``),
  typed from the annotation, a ``bool`` as ``--x / --no-x``, a ``dict`` as a repeatable ``KEY=VALUE``, its help
  ending in the field's default. No flag has an argparse default, so ``given_flags(args, cls)`` returns exactly
  what was typed;
* ``read_config_file(path, section)``: a TOML, YAML (with PyYAML installed) or JSON file, or a run's
  ``config.json``, as ``{section: {...}, "train": {...}}``; ``file_values`` checks its keys and types;
* ``layered(cls, *layers)``: the config from the dataclass defaults, then each layer in turn (a config file,
  then the explicit flags);
* ``config_to_argv(cfg, base)``: the flags that turn ``base`` into ``cfg`` (how the speedrun writes its stage
  commands);
* ``config_to_dict`` / ``config_from_dict``: JSON round trips tolerant of older files (unknown keys dropped with
  a note, missing keys take the defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

from llmlab.errors import ConfigError, LlmlabError

T = TypeVar("T")

# The "format" of the config.json a training run writes (llmlab.train.loop); such a file can be read back with
# --config: its [train] and [<stage>] sections are used, everything else in it (model, data counts) is a record.
RUN_CONFIG_FORMAT = "llmlab-run-config"
RUN_CONFIG_VERSION = 1
CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


# ----------------------------------------------------------------------------------------------------------
# Declaring fields


def option(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING,
           flag: str | None = None, short: str | None = None, choices: tuple | list | None = None,
           type: Callable[[str], Any] | None = None, show: Callable[[Any], str] | None = None,
           metavar: str | None = None, group: str | None = None, required: bool = False, cli: bool = True,
           from_file: bool = True) -> Any:
    """A dataclass field with what its flag needs. ``flag``: the flag's name when it is not the field's in
    kebab case; ``short``: an extra short alias; ``type``: argparse's converter when the annotation's type is not
    enough; ``show``: how a value is written as a flag (and in help); ``group``: an argparse group title;
    ``required``: must be non-empty once the layers are merged; ``cli=False``: no flag; ``from_file=False``: only
    from the command line (a run folder: ``--out``)."""
    meta = {"help": help, "flag": flag, "short": short, "choices": tuple(choices) if choices else None,
            "type": type, "show": show, "metavar": metavar, "group": group, "required": required, "cli": cli,
            "from_file": from_file}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


class Checked:
    """Mixin for config dataclasses: building one (directly, with ``dataclasses.replace`` or from a file) checks
    every field that has ``choices`` and the class's own ``problems()``, and raises one ``ConfigError`` naming
    all of them, so a library caller gets the checks the CLI has."""

    def __post_init__(self) -> None:
        hints, problems = _hints(type(self)), []
        for f in dataclasses.fields(self):
            if _kind(hints[f.name]) is str and isinstance(getattr(self, f.name), os.PathLike):
                setattr(self, f.name, os.fspath(getattr(self, f.name)))  # a Path for a path field: kept as text
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                problems.append(f"{f.name} must be one of {', '.join(map(str, choices))}, got {value!r}")
        problems += self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with this config's values (empty when nothing is)."""
        return []


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@functools.cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap(hint: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _kind(hint: Any) -> Any:
    """bool, int, float, str, dict, list or tuple: what a field holds (``dict[str, float]`` -> dict)."""
    base = _unwrap(hint)
    return typing.get_origin(base) or base


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(f: dataclasses.Field, value: Any) -> str:
    show = f.metadata.get("show")
    return show(value) if show else str(value)


# ----------------------------------------------------------------------------------------------------------
# Flags


def add_config_flags(parser: argparse.ArgumentParser, cls: type, *, defaults: dict | None = None,
                     group: str | None = None) -> None:
    """Add one flag per field of ``cls`` (fields with ``cli=False`` excepted) to ``parser``. ``defaults``
    replaces some fields' defaults in the help text (a stage's TrainConfig defaults); ``group`` puts the flags
    under that heading. Parsed values land under the field's name, and only when the flag was given."""
    hints = _hints(cls)
    groups: dict[str | None, Any] = {None: parser.add_argument_group(group) if group else parser}
    for f in dataclasses.fields(cls):
        m = f.metadata
        if not m.get("cli", True):
            continue
        kind = _kind(hints[f.name])
        default = (defaults or {}).get(f.name, _default(f))
        text = m.get("help", "")
        if default not in (dataclasses.MISSING, None, "", {}, [], ()):
            shown = _show(f, default) if kind is not bool else ("on" if default else "off")
            text += f" (default: {shown})"
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": text.replace("%", "%%")}
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif kind in (dict, list, tuple):
            kw["action"] = "append"
        else:
            kw["type"] = m.get("type") or kind
        if m.get("choices"):
            kw["choices"] = m["choices"]
        if m.get("metavar"):
            kw["metavar"] = m["metavar"]
        if m.get("required") and not m.get("from_file", True):
            kw["required"] = True  # it can come from nowhere else
        title = m.get("group")
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        names = [m["short"], flag_name(f)] if m.get("short") else [flag_name(f)]
        groups[title].add_argument(*names, **kw)


def given_flags(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` whose flags were given, as field values (``KEY=VALUE`` items -> a dict). A ``None``
    is skipped: no flag produces one, but a parent parser's default can leave one in a subcommand's namespace."""
    hints, ns, out = _hints(cls), vars(args), {}
    for f in dataclasses.fields(cls):
        value = ns.get(f.name)
        if value is None or not f.metadata.get("cli", True):
            continue
        kind = _kind(hints[f.name])
        if kind is dict:
            value = _parse_items(value, f, _unwrap(hints[f.name]))
        elif kind in (list, tuple):
            value = kind(value)
        out[f.name] = value
    return out


def _parse_items(items: list[str], f: dataclasses.Field, hint: Any) -> dict:
    value_type = (typing.get_args(hint) or (str, str))[1]
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        try:
            out[key.strip()] = value_type(raw)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise LlmlabError(f"{flag_name(f)}: expected {f.metadata.get('metavar') or 'KEY=VALUE'}, got {item!r}")
    return out


def config_to_argv(cfg: Any, base: Any, *, always: tuple[str, ...] = ()) -> list[str]:
    """The flags that turn ``base`` into ``cfg`` (fields that differ, and the ``always`` ones), in field order."""
    hints, argv = _hints(type(cfg)), []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not f.metadata.get("cli", True) or (value == getattr(base, f.name) and f.name not in always):
            continue
        flag, kind = flag_name(f), _kind(hints[f.name])
        if value is None:
            raise ValueError(f"{type(cfg).__name__}.{f.name}: None has no flag (leave it at its default)")
        if kind is bool:
            argv.append(flag if value else "--no-" + flag[2:])
        elif kind is dict:
            argv += [a for k, v in value.items() for a in (flag, f"{k}={v}")]
        elif kind in (list, tuple):
            argv += [a for v in value for a in (flag, str(v))]
        else:
            argv += [flag, _show(f, value)]
    return argv


def require(cfg: Any, what: str) -> None:
    """Raise a one-line error when a ``required`` field of ``cfg`` is still empty."""
    for f in dataclasses.fields(cfg):
        if f.metadata.get("required") and getattr(cfg, f.name) in (None, ""):
            where = "" if not f.metadata.get("from_file", True) else f" (or {f.name} in the --config file)"
            raise LlmlabError(f"{what} needs {flag_name(f)}{where}")


# ----------------------------------------------------------------------------------------------------------
# Config files and layers


def read_config_file(path, section: str, others: tuple[str, ...] = ("train",)) -> tuple[dict[str, dict], bool]:
    """``({section: {...}, other: {...}}, is_run_config)`` from a TOML / YAML / JSON file. A user's file holds
    only those sections; a run's ``config.json`` holds more (the model, data counts), which is skipped, and
    must have ``section`` (a run of this stage)."""
    p = Path(path)
    if not p.is_file():
        raise LlmlabError(f"{p}: config file not found")
    suffix = p.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise LlmlabError(f"{p}: a config file is .toml, .yaml or .json")
    text = p.read_text(encoding="utf-8")
    if suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise LlmlabError(f"{p}: malformed TOML: {e}") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise LlmlabError(f"{p}:{e.lineno}: malformed JSON: {e.msg}") from None
    else:
        try:
            import yaml
        except ImportError:
            raise LlmlabError(f"{p}: YAML config files need PyYAML (pip install pyyaml); TOML needs nothing") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise LlmlabError(f"{p}{line}: malformed YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise LlmlabError(f"{p}: expected sections [{section}] and [{'], ['.join(others)}], got {type(data).__name__}")
    wanted = (section, *others)
    run_config = data.get("format") == RUN_CONFIG_FORMAT or "world_size" in data
    if run_config and section not in data:
        raise LlmlabError(f"{p}: a run config without a {section!r} section (a run of another stage: "
                          f"{data.get('stage', 'unknown')!r})")
    if not run_config:
        unknown = sorted(set(data) - set(wanted))
        if unknown:
            raise LlmlabError(f"{p}: unknown section(s) {', '.join(unknown)}; this command reads "
                              f"{', '.join(f'[{w}]' for w in wanted)}")
    out = {}
    for name in wanted:
        sec = data.get(name, {})
        if not isinstance(sec, dict):
            raise LlmlabError(f"{p}: [{name}] must be a table of settings, got {sec!r}")
        out[name] = dict(sec)
    return out, run_config


def file_values(cls: type, values: dict, where: str, *, run_config: bool = False) -> dict[str, Any]:
    """Check one section of a config file against ``cls``: every key a field, every value of its type (ints
    are accepted for floats, lists for tuples). Fields with ``from_file=False`` are refused, or skipped in a
    run's own config.json (its ``out`` is the old run folder)."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        f = fields.get(key)
        if f is None:
            if run_config:  # written by another version of llmlab: a note, as config_from_dict gives
                print(f"note: {where}: ignoring unknown {cls.__name__} key {key!r}", file=sys.stderr)
                continue
            import difflib

            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LlmlabError(f"{where}: unknown setting {key!r} for {cls.__name__}{hint}")
        if not f.metadata.get("from_file", True):
            if run_config:
                continue
            raise LlmlabError(f"{where}: {key} is given on the command line ({flag_name(f)}), not in a config file")
        out[key] = _coerce(value, hints[key], f"{where}: {key}")
    return out


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if value is None:
        if _unwrap(hint) is hint:  # not Optional
            raise LlmlabError(f"{where}: may not be empty")
        return None
    kind = _kind(hint)
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool), str: isinstance(value, str),
          dict: isinstance(value, dict), list: isinstance(value, list), tuple: isinstance(value, (list, tuple))}
    if not ok.get(kind, True):
        name = getattr(kind, "__name__", str(kind))
        raise LlmlabError(f"{where}: expected {name}, got {value!r}")
    if kind is float:
        return float(value)
    if kind is tuple:
        return tuple(value)
    return value


def layered(cls: type[T], *layers: dict[str, Any]) -> T:
    """``cls`` from its defaults, then each layer's values in turn (later layers win)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return cls(**merged)


# ----------------------------------------------------------------------------------------------------------
# JSON


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
