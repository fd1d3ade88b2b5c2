"""``llmlab tool``: exit codes, one-line errors, and the JSON the python command prints."""

import io
import json
import subprocess
import sys

import pytest

from llmlab.cli import main
from llmlab.tools import sandbox as sb

RESULT_KEYS = {"stdout", "stderr", "exit_code", "signal", "limit", "backend", "duration_s", "cpu_s", "max_rss_mb",
               "stdout_truncated", "stderr_truncated"}
needs_sandbox = pytest.mark.skipif(not any(sb.probe(b) is None for b in sb.BACKENDS),
                                   reason="no sandbox works here (install bubblewrap)")


def test_calc(capsys):
    assert main(["tool", "calc", "2**100 / 6"]) == 0
    assert capsys.readouterr().out == "633825300114114700748351602688/3\n"
    assert main(["tool", "calc", "0.1", "+", "0.2"]) == 0  # words are joined
    assert capsys.readouterr().out == "0.3\n"


@pytest.mark.parametrize("expr,msg", [("1/0", "division by zero"), ("__import__('os')", "unknown function"),
                                      ("9**9**9", "result too large"), ("2 +", "syntax error")])
def test_calc_errors_are_one_line(capsys, expr, msg):
    assert main(["tool", "calc", expr]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("llmlab: error: ") and msg in captured.err and captured.err.count("\n") == 1


def test_calc_as_a_real_command():
    r = subprocess.run([sys.executable, "-m", "llmlab.cli", "tool", "calc", "1/0"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == "llmlab: error: division by zero\n" and "Traceback" not in r.stderr


def _python(monkeypatch, capsys, code, *flags):
    monkeypatch.setattr(sys, "stdin", io.StringIO(code))
    rc = main(["tool", "python", *flags])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@needs_sandbox
def test_python_prints_json(monkeypatch, capsys):
    rc, out, _ = _python(monkeypatch, capsys, "print(6*7)\n", "--timeout", "5", "--memory", "256")
    data = json.loads(out)
    assert rc == 0 and set(data) == RESULT_KEYS
    assert (data["stdout"], data["exit_code"], data["limit"], data["signal"]) == ("42\n", 0, None, None)
    assert data["backend"] in sb.BACKENDS


@needs_sandbox
def test_python_exits_0_whatever_the_code_did(monkeypatch, capsys):
    rc, out, _ = _python(monkeypatch, capsys, "raise SystemExit(3)\n")
    assert rc == 0 and json.loads(out)["exit_code"] == 3
    rc, out, _ = _python(monkeypatch, capsys, "x = bytearray(10**10)\n", "--memory", "64")
    assert rc == 0 and json.loads(out)["limit"] == "memory"
    rc, out, _ = _python(monkeypatch, capsys, "import time\ntime.sleep(60)\n", "--timeout", "0.5")
    data = json.loads(out)
    assert rc == 0 and data["limit"] == "wall_time" and data["signal"] == "SIGKILL" and data["exit_code"] is None
    rc, out, _ = _python(monkeypatch, capsys, "print('y' * 5000)\n", "--max-output", "100")
    data = json.loads(out)
    assert rc == 0 and data["limit"] == "output" and len(data["stdout"]) == 100 and data["stdout_truncated"]


def test_python_refuses_without_a_sandbox(monkeypatch, capsys):
    sb.probe.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        rc, out, err = _python(monkeypatch, capsys, "print(1)\n")
        assert rc == 2 and out == "" and err.startswith("llmlab: error: no sandbox works here")
        assert "--unsafe-no-sandbox" in err and err.count("\n") == 1
        rc, out, err = _python(monkeypatch, capsys, "print(1)\n", "--unsafe-no-sandbox")
        data = json.loads(out)
        assert rc == 0 and data["backend"] == "none" and data["stdout"] == "1\n"
    finally:
        sb.probe.cache_clear()


def test_python_bad_flags_are_one_line_errors(monkeypatch, capsys):
    rc, out, err = _python(monkeypatch, capsys, "print(1)\n", "--memory", "4")
    assert rc == 2 and "memory_mb must be an integer >= 32" in err and err.count("\n") == 1


def test_call(capsys):
    assert main(["tool", "call", "calc 12*7"]) == 0
    assert capsys.readouterr().out == "84\n"
    assert main(["tool", "call", '{"name": "calc", "arguments": {"expression": "1/3"}}']) == 0
    assert capsys.readouterr().out == "1/3\n"
    assert main(["tool", "call", "nope 1"]) == 1  # the error text is what the model would see; exit 1
    assert capsys.readouterr().out.startswith("error: unknown tool 'nope'")


def test_call_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("<|tool_call|>calc 2+3<|/tool_call|>"))
    assert main(["tool", "call"]) == 0
    assert capsys.readouterr().out == "5\n"


def test_list(capsys):
    assert main(["tool", "list"]) == 0
    tools = json.loads(capsys.readouterr().out)
    assert [t["function"]["name"] for t in tools] == ["calc", "python"]
