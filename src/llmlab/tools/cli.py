"""``llmlab tool``: the assistant's tools, run by hand or by a script.

    llmlab tool calc "2**100 / 6"                      # the exact result; a bad expression: one line, exit 2
    echo 'print(6*7)' | llmlab tool python --timeout 5 --memory 256    # JSON: stdout, stderr, exit_code, limit...
    llmlab tool call "calc 12*7"                       # one tool call as the model writes it -> the result text
    llmlab tool list                                   # the tools as OpenAI's `tools` field (JSON)

``tool python`` exits 0 whenever the sandbox itself worked, whatever the code did (its exit status and the
limit that stopped it are in the JSON), and 2 with one line when no sandbox works here -- unless
``--unsafe-no-sandbox`` says to run the code with resource limits only.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tool", help="the assistant's tools: exact calculator, sandboxed Python",
                       description="Run the assistant's tools by hand: calc, python, call, list.")
    tsub = p.add_subparsers(dest="tool_command", metavar="<tool>", required=True)

    q = tsub.add_parser("calc", help="exact arithmetic (integers, fractions, decimals)",
                        description="Evaluate an arithmetic expression exactly and print the result.")
    q.add_argument("expression", nargs="+", help="e.g. '2**100 / 6' (several words are joined with spaces)")
    q.set_defaults(func=_calc)

    q = tsub.add_parser("python", help="run Python code from stdin in the sandbox; print JSON",
                        description="Read a Python program on stdin, run it in the sandbox, print a JSON object "
                        "(stdout, stderr, exit_code, signal, limit, backend, ...).")
    _add_sandbox_args(q)
    q.set_defaults(func=_python)

    q = tsub.add_parser("call", help="run one tool call as the model writes it; print the result text",
                        description="Parse and run one tool call ('calc 12*7', 'python\\n<code>' or OpenAI-style "
                        "JSON) and print what the model would see between <|tool_result|> delimiters.")
    q.add_argument("text", nargs="?", help="the call (default: read it from stdin)")
    _add_sandbox_args(q)
    q.set_defaults(func=_call)

    q = tsub.add_parser("list", help="print the tools as OpenAI's `tools` field (JSON)")
    q.set_defaults(func=_list)


def _add_sandbox_args(q: argparse.ArgumentParser) -> None:
    from llmlab.tools.sandbox import SandboxConfig

    d = SandboxConfig()
    g = q.add_argument_group("sandbox")
    g.add_argument("--timeout", type=float, default=d.timeout_s, metavar="S", help="wall-clock seconds")
    g.add_argument("--cpu", type=float, default=None, metavar="S", help="CPU seconds (default: --timeout)")
    g.add_argument("--memory", type=int, default=d.memory_mb, metavar="MB", help="address-space limit")
    g.add_argument("--max-output", type=int, default=d.max_output_bytes, metavar="BYTES",
                   help="cap on each of stdout and stderr")
    g.add_argument("--backend", choices=["auto", "bwrap", "unshare"], default="auto",
                   help="isolation: bubblewrap or util-linux unshare (auto: the first that works)")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="if no sandbox works here, run the code anyway with resource limits only (NO isolation)")


def _sandbox_config(args):
    from llmlab.tools.sandbox import SandboxConfig

    return SandboxConfig(timeout_s=args.timeout, cpu_s=args.cpu, memory_mb=args.memory,
                         max_output_bytes=args.max_output, backend=args.backend,
                         allow_unsandboxed=args.unsafe_no_sandbox)


def _calc(args) -> int:
    from llmlab.tools.calc import calculate

    print(calculate(" ".join(args.expression)))
    return 0


def _python(args) -> int:
    from llmlab.tools.sandbox import run_python

    cfg = _sandbox_config(args)
    code = sys.stdin.read()
    print(json.dumps(run_python(code, cfg).to_dict(), ensure_ascii=False))
    return 0


def _call(args) -> int:
    from llmlab.tools.runner import default_registry

    text = args.text if args.text is not None else sys.stdin.read()
    result = default_registry(sandbox=_sandbox_config(args)).run(text)
    print(result.text)
    return 0 if result.ok else 1


def _list(args) -> int:
    from llmlab.tools.runner import default_registry

    print(json.dumps(default_registry().openai_tools(), indent=1))
    return 0
