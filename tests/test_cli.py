"""The CLI: help and version work, every stage has help, user errors are one line with exit 2."""

import subprocess
import sys

import pytest

from llmlab import __version__
from llmlab.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_every_stage_has_help(capsys):
    parser = build_parser()
    stages = [a for a in parser._subparsers._group_actions[0].choices]
    assert "data" in stages
    for stage in stages:
        with pytest.raises(SystemExit) as e:
            main([stage, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: llmlab " + stage)


def test_user_error_is_one_line_no_traceback(capsys):
    assert main(["data", "read", "no-such-play"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: unknown work 'no-such-play'")
    assert "Traceback" not in err and err.count("\n") == 1


def test_help_does_not_import_torch():
    # `llmlab --help` must stay fast: stage modules import torch inside their handlers only.
    code = "import sys; from llmlab.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
