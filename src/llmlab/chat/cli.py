"""``llmlab chat``: talk to a fine-tuned run, in a REPL or one shot; also the default SFT data generator.

    llmlab chat --model runs/sft                                   # REPL (streaming, multi-turn)
    llmlab chat --model runs/sft --prompt "What is 7 plus 5?" --json
    llmlab chat --model runs/sft --system "Be brief." --prompt "Who are you?"
    echo -e "Hello\\n/reset\\nWho are you?" | llmlab chat --model runs/sft   # stdin works line by line
    llmlab chat synth --out data/chat.jsonl                        # the generated default SFT conversations

REPL commands: ``/system TEXT`` (``/system`` alone clears it), ``/reset`` (forget the conversation, keep
the system prompt), ``/temperature X``, ``/top-p X``, ``/explain`` (toggle: after each answer, show every
token with the model's probability and its strongest alternatives), ``/save FILE`` and ``/load FILE`` (the
conversation as JSON), ``/help``, ``/quit`` (or Ctrl-D). Ctrl-C stops the answer being generated and keeps
the session (the partial answer stays in the history).

``--json`` prints ``{"text", "finish_reason", "prompt_tokens", "completion_tokens", "model"}``;
``finish_reason`` is ``"stop"`` when the model ended its turn (``<|end|>``, or a token that would start
another role) and ``"length"`` when the token limit or the context did.

Long conversations follow the chat template's overflow policy (``llmlab.chat.template``): the oldest
exchanges are dropped to fit the context, the system prompt and the latest question are kept.
"""

from __future__ import annotations

import argparse
import json
import sys

from llmlab.infer.session import ChatSession
from llmlab.tasks.synth import SynthConfig
from llmlab.utils.config import add_config_flags, given_flags, layered

HELP = """commands:
  /system TEXT      set the system prompt (/system alone clears it)
  /reset            forget the conversation (the system prompt stays)
  /temperature X    sampling temperature (0 = greedy)
  /top-p X          nucleus sampling threshold in (0, 1]
  /explain          toggle: show each answer token's probability and alternatives
  /save FILE        save the conversation (JSON)
  /load FILE        load a saved conversation
  /help             this help
  /quit             leave (also Ctrl-D); Ctrl-C stops an answer but keeps the session"""

ROLE_STYLE = {"user": "bold green", "assistant": "cyan", "system": "magenta", "info": "dim"}


# ----------------------------------------------------------------------------------------------------------
# The REPL


def run_repl(session: ChatSession, stdin=None, console=None) -> int:
    """Read lines until /quit or end of input; works on a terminal and on piped stdin alike."""
    from rich.console import Console

    stdin = stdin or sys.stdin
    console = console or Console(highlight=False)
    tty = stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        console.print("llmlab chat: type a message, /help for commands, /quit to leave.", style=ROLE_STYLE["info"])
        if session.system:
            console.print(f"system: {session.system}", style=ROLE_STYLE["system"])
    while True:
        try:
            if tty:
                console.print("you> ", style=ROLE_STYLE["user"], end="")
                line = input()
            else:
                line = stdin.readline()
                if not line:
                    break
                line = line.rstrip("\n")
        except EOFError:
            break
        except KeyboardInterrupt:
            console.print("\n(Ctrl-C: use /quit or Ctrl-D to leave)", style=ROLE_STYLE["info"])
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            if _command(session, line, console) == "quit":
                break
            continue
        if not tty:
            console.print(f"you> {line}", style=ROLE_STYLE["user"], markup=False)
        console.print("assistant> ", style=ROLE_STYLE["assistant"], end="")
        r = session.reply(line, on_text=lambda s: console.print(s, style=ROLE_STYLE["assistant"], end="",
                                                                 markup=False, highlight=False, soft_wrap=True))
        console.print()
        if r.finish_reason == "interrupted":
            console.print("(stopped)", style=ROLE_STYLE["info"])
        elif r.finish_reason == "length":
            console.print("(cut off at the token limit)", style=ROLE_STYLE["info"])
        if r.dropped_messages:
            console.print(f"({r.dropped_messages} older messages left out to fit the context)", style=ROLE_STYLE["info"])
        if session.explain and r.explain:
            _print_explain(console, r.explain)
    return 0


def _print_explain(console, entries: list[dict]) -> None:
    from rich.table import Table

    table = Table(title="token probabilities", show_edge=False, pad_edge=False)
    table.add_column("token")
    table.add_column("p", justify="right")
    table.add_column("alternatives")
    for e in entries:
        alts = ", ".join(f"{t!r} {p:.2f}" for t, p in e["top"] if t != e["token"])
        style = "green" if e["prob"] >= 0.5 else ("yellow" if e["prob"] >= 0.1 else "red")
        table.add_row(repr(e["token"]), f"[{style}]{e['prob']:.2f}[/{style}]", alts)
    console.print(table)


def _command(session: ChatSession, line: str, console) -> str | None:
    from llmlab.errors import LlmlabError

    name, _, arg = line.partition(" ")
    arg = arg.strip()
    info = ROLE_STYLE["info"]
    try:
        if name in ("/quit", "/exit", "/q"):
            return "quit"
        if name == "/help":
            console.print(HELP, style=info, markup=False)
        elif name == "/system":
            session.system = arg
            console.print(f"system prompt {'set' if arg else 'cleared'}", style=info)
        elif name == "/reset":
            session.reset()
            console.print("conversation reset", style=info)
        elif name == "/temperature":
            value = float(arg)
            if value < 0:
                raise ValueError
            session.temperature = value
            console.print(f"temperature {value}", style=info)
        elif name in ("/top-p", "/top_p"):
            value = float(arg)
            if not 0 < value <= 1:
                raise ValueError
            session.top_p = value
            console.print(f"top-p {value}", style=info)
        elif name == "/explain":
            session.explain = not session.explain
            console.print(f"explain {'on' if session.explain else 'off'}", style=info)
        elif name == "/save":
            if not arg:
                raise LlmlabError("usage: /save FILE")
            session.save(arg)
            console.print(f"saved {len(session.messages())} messages to {arg}", style=info)
        elif name == "/load":
            if not arg:
                raise LlmlabError("usage: /load FILE")
            n = session.load(arg)
            console.print(f"loaded {n} messages from {arg}", style=info)
        else:
            console.print(f"unknown command {name}; /help lists them", style="red", markup=False)
    except ValueError:
        console.print(f"{name}: expected a number ({'0 or more' if name == '/temperature' else 'in (0, 1]'})",
                      style="red", markup=False)
    except LlmlabError as e:
        console.print(f"error: {e}", style="red", markup=False)
    return None


# ----------------------------------------------------------------------------------------------------------
# Wiring


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="chat with a fine-tuned model (REPL or one shot); 'chat synth' makes SFT data",
                       description="Chat with a fine-tuned run: a streaming REPL, or one answer with --prompt.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", help="run folder (from llmlab sft)")
    p.add_argument("--prompt", help="one-shot: answer this message and exit")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--json", action="store_true", help="one-shot: print a JSON object (text, finish_reason, ...)")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling threshold")
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit (the context also limits it)")
    p.add_argument("--seed", type=int, default=None, help="makes sampling reproducible")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default: torch's choice; 1 is fastest for small models on a busy machine)")
    p.add_argument("--compile", action="store_true",
                   help="decode with the ahead-of-time compiled step (2-4x faster per token on a CPU; the first use "
                   "of a model shape compiles it, ~30-60 s, then it is cached)")
    p.set_defaults(func=_chat, chat_command=None)
    csub = p.add_subparsers(dest="chat_command", metavar="[synth]")
    q = csub.add_parser("synth", help="write the generated default SFT conversations (train + held-out JSONL)",
                        description="Write the bundled generator's conversations: OUT (train) and OUT's "
                        ".val.jsonl sibling (held-out items, never seen in training).")
    add_config_flags(q, SynthConfig)
    q.set_defaults(func=_synth)


def _chat(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.runs import load_run

    if not args.model:
        raise LlmlabError("chat needs --model RUN (or 'llmlab chat synth --out FILE' for the SFT data)")
    if args.temperature < 0 or not 0 < args.top_p <= 1:
        raise LlmlabError("--temperature must be >= 0 and --top-p in (0, 1]")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, tok = load_run(args.model, device=args.device)
    session = ChatSession(model, tok, system=args.system, temperature=args.temperature, top_p=args.top_p,
                          top_k=args.top_k, max_new_tokens=args.max_new_tokens, seed=args.seed, compile=args.compile)
    if args.prompt is None:
        if args.json:
            raise LlmlabError("--json needs --prompt (one-shot mode)")
        return run_repl(session)
    if args.json:
        r = session.reply(args.prompt)
        print(json.dumps({"text": r.text, "finish_reason": r.finish_reason, "prompt_tokens": r.prompt_tokens,
                          "completion_tokens": len(r.token_ids), "model": str(args.model)}, ensure_ascii=False))
    else:
        r = session.reply(args.prompt, on_text=lambda s: print(s, end="", flush=True))
        print()
    return 0


def _synth(args) -> int:
    from llmlab.tasks.synth import write_synth

    print(json.dumps(write_synth(layered(SynthConfig, given_flags(args, SynthConfig)))))
    return 0
