"""Atomic writes leave no torn or temporary files; configs round-trip and tolerate old files."""

import dataclasses
import json
import os

import pytest

from llmlab.errors import LlmlabError
from llmlab.utils.config import Checked, config_from_dict, config_to_dict, option, override
from llmlab.utils.io import atomic_path, atomic_write, read_json, write_json


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "sub" / "out.txt"
    with atomic_write(p) as f:
        f.write("first")
    with atomic_write(p) as f:
        f.write("second")
    assert p.read_text() == "second"
    assert os.listdir(p.parent) == ["out.txt"]  # no temporary files left behind
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_keeps_old_file_on_crash(tmp_path):
    p = tmp_path / "out.json"
    write_json(p, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write('{"a": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert json.loads(p.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_path_for_libraries(tmp_path):
    p = tmp_path / "w.bin"
    with atomic_path(p) as tmp:
        assert tmp != p and tmp.parent == p.parent
        tmp.write_bytes(b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["w.bin"]


def test_read_json_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(LlmlabError, match="missing.json: summary not found"):
        read_json(tmp_path / "missing.json", "summary")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n"a": 1,\n}')
    with pytest.raises(LlmlabError, match=r"bad.json:3: malformed"):
        read_json(bad)


@dataclasses.dataclass
class Inner:
    x: int = 1


@dataclasses.dataclass
class Outer:
    name: str = "a"
    dims: tuple = (1, 2)
    inner: Inner = dataclasses.field(default_factory=Inner)
    lr: float | None = None


def test_config_round_trip_and_tolerance(capsys):
    cfg = Outer(name="b", dims=(3, 4), inner=Inner(7), lr=0.1)
    data = json.loads(json.dumps(config_to_dict(cfg)))
    assert config_from_dict(Outer, data) == cfg
    # An older file: a key this version dropped, and a key this version added (missing -> default).
    old = {"name": "c", "retired_knob": 5}
    got = config_from_dict(Outer, old, source="old.json")
    assert got == Outer(name="c")
    assert "retired_knob" in capsys.readouterr().err
    assert override(cfg, name=None, lr=0.5) == Outer(name="b", dims=(3, 4), inner=Inner(7), lr=0.5)


@dataclasses.dataclass
class Toy(Checked):
    name: str = option("a", "a name")
    steps: int = option(3, "how many")
    rate: float | None = option(None, "a rate (default: none)")
    fast: bool = option(True, "go fast")
    mode: str = option("x", "which", choices=("x", "y"))
    shares: dict[str, float] = option(default_factory=dict, flag="--share", metavar="KIND=FRACTION", help="shares")
    hidden: int = option(7, cli=False)


def test_flags_from_a_dataclass_round_trip():
    """One flag per field, typed, its default shown in the help; only what was typed comes back; the flags
    written for a config parse back to that config."""
    import argparse

    from llmlab.utils.config import add_config_flags, config_to_argv, given_flags, layered

    p = argparse.ArgumentParser()
    add_config_flags(p, Toy)
    assert given_flags(p.parse_args([]), Toy) == {}
    got = given_flags(p.parse_args(["--steps", "5", "--no-fast", "--share", "a=0.5", "--share", "b=1"]), Toy)
    assert got == {"steps": 5, "fast": False, "shares": {"a": 0.5, "b": 1.0}}
    assert "(default: 3)" in p.format_help() and "--hidden" not in p.format_help()
    cfg = Toy(name="b", steps=9, rate=0.25, fast=False, mode="y", shares={"k": 0.5})
    argv = config_to_argv(cfg, Toy())
    assert layered(Toy, given_flags(p.parse_args(argv), Toy)) == cfg
    assert config_to_argv(Toy(), Toy()) == []
    with pytest.raises(LlmlabError, match="--share: expected KIND=FRACTION, got 'k'"):
        given_flags(p.parse_args(["--share", "k"]), Toy)
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "z"])  # argparse's own choices check
    with pytest.raises(ValueError, match="mode must be one of x, y, got 'z'"):
        Toy(mode="z")  # and the dataclass's, for library callers
