"""``llmlab chat``: talk to a fine-tuned run, in a REPL or one shot; also the default SFT data generator.

    llmlab chat --model runs/sft                                   # REPL (streaming, multi-turn)
    llmlab chat --model runs/sft --prompt "What is 7 plus 5?" --json
    llmlab chat --model runs/sft --system "Be brief." --prompt "Who are you?"
    echo -e "Hello\\n/reset\\nWho are you?" | llmlab chat --model runs/sft   # stdin works line by line
    llmlab chat synth --out data/chat.jsonl                        # the generated default SFT conversations
    llmlab chat --model runs/sft --tools calc --prompt "What is 347 times 28?"     # tools inside generation
    llmlab chat --model runs/sft --tools search --index my_index --prompt "Who founded Brindle Works?"
    llmlab chat --assistant helper                                 # a saved assistant (llmlab assistant create)

REPL commands: ``/system TEXT`` (``/system`` alone clears it), ``/reset`` (forget the conversation, keep
the system prompt), ``/temperature X``, ``/top-p X``, ``/explain`` (toggle: after each answer, show every
token with the model's probability and its strongest alternatives), ``/save FILE`` and ``/load FILE`` (the
conversation as JSON), ``/help``, ``/quit`` (or Ctrl-D). Ctrl-C stops the answer being generated and keeps
the session (the partial answer stays in the history).

``--tools calc,python,search`` lets the model call tools while it answers (``llmlab.tools.loop``): the calls and
their results are shown as they happen, and an answer that cites retrieved passages ([1], [2]) is followed by
its source list. ``search`` needs ``--index`` (``llmlab index``); ``--assistant N`` brings a saved profile's
model, system prompt, tools, index and sampling settings (flags given explicitly override them).

``--json`` prints ``{"text", "finish_reason", "prompt_tokens", "completion_tokens", "model"}`` (with tools also
``tool_calls`` and ``sources``);
``finish_reason`` is ``"stop"`` when the model ended its turn (``<|end|>``, or a token that would start
another role) and ``"length"`` when the token limit or the context did.

``--guard flag|block`` puts the safety guard (``llmlab.safety.filters.GuardedSession``) in front of the
model: a blocked message is answered with the guard's refusal (finish reason ``"content_filter"``, the model
not run), a flagged one is answered with a safety note in the system prompt; either way a line
``[guard: ...]`` says what it did, and ``--json`` adds the verdict as ``"guard"``.

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
        if r.sources:
            console.print(r.sources, style=ROLE_STYLE["info"], markup=False)
        if r.finish_reason == "interrupted":
            console.print("(stopped)", style=ROLE_STYLE["info"])
        elif r.finish_reason == "length":
            console.print("(cut off at the token limit)", style=ROLE_STYLE["info"])
        if r.dropped_messages:
            console.print(f"({r.dropped_messages} older messages left out to fit the context)", style=ROLE_STYLE["info"])
        if getattr(r, "guard_note", None):  # llmlab chat --guard: what the safety guard did
            console.print(r.guard_note, style=ROLE_STYLE["info"], markup=False)
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
    p.add_argument("--assistant", metavar="NAME", help="a saved assistant (llmlab assistant create): its model, "
                   "system prompt, tools, index and sampling defaults")
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
    p.add_argument("--tools", default=None, metavar="LIST",
                   help="tools the model may call while answering: calc, python, search (comma-separated)")
    p.add_argument("--index", default=None, metavar="INDEX", help="the document index the search tool reads")
    p.add_argument("--max-tool-calls", type=int, default=4, help="tool calls allowed in one answer")
    p.add_argument("--guard", choices=["off", "flag", "block"], default="off",
                   help="safety guard on each message: flag labels it (the model is told), block refuses it "
                   "(llmlab guard check judges one text)")
    p.add_argument("--quantize", choices=["int8", "int8-dynamic"], default=None,
                   help="int8 linear layers, one scale per output channel: 'int8' weight-only, 'int8-dynamic' 8-bit "
                   "activations too (fbgemm, x86: faster, less precise)")
    p.set_defaults(func=_chat, chat_command=None)
    csub = p.add_subparsers(dest="chat_command", metavar="[synth]")
    q = csub.add_parser("synth", help="write the generated default SFT conversations (train + held-out JSONL)",
                        description="Write the bundled generator's conversations: OUT (train) and OUT's "
                        ".val.jsonl sibling (held-out items, never seen in training).")
    add_config_flags(q, SynthConfig)
    q.set_defaults(func=_synth)


_CHAT_DEFAULTS = {"system": "", "temperature": 0.7, "top_p": 0.9, "top_k": 0, "max_new_tokens": 128}


def _chat(args) -> int:
    from llmlab.utils.openmp import passive_wait

    passive_wait()  # before torch loads OpenMP (utils/openmp.py)
    from llmlab.errors import LlmlabError
    from llmlab.runs import load_run
    from llmlab.tools.toolset import make_tool_loop, parse_tools

    tools, index, search = parse_tools(args.tools), args.index, None
    if args.assistant:
        from llmlab.tools.assistants import load_assistant

        a = load_assistant(args.assistant)
        args.model = args.model or a.model
        for key, default in _CHAT_DEFAULTS.items():  # the profile's value unless the flag was given
            if getattr(args, key) == default:
                setattr(args, key, a.system if key == "system" else a.sampling.get(key, default))
        tools, index, search = tools or tuple(a.tools), index or a.index_path(), a.search_config()
        if not args.model:
            raise LlmlabError(f"assistant {a.name!r} names no model; give --model RUN")
    if not args.model:
        raise LlmlabError("chat needs --model RUN (or 'llmlab chat synth --out FILE' for the SFT data)")
    if args.temperature < 0 or not 0 < args.top_p <= 1:
        raise LlmlabError("--temperature must be >= 0 and --top-p in (0, 1]")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, tok = load_run(args.model, device=args.device)
    if args.quantize:
        from llmlab.model.kernels.int8 import quantize

        quantize(model, args.quantize)
    screen = None
    if tools and args.guard != "off":  # tool results pass the guard before the model reads them (injections)
        from llmlab.safety.filters import screen_tool_result

        def screen(text: str) -> str:
            return screen_tool_result(text, args.guard)[0]
    loop = make_tool_loop(tok, tools, index=index, search=search, max_calls=args.max_tool_calls,
                          result_filter=screen) if tools else None
    session = ChatSession(model, tok, system=args.system, temperature=args.temperature, top_p=args.top_p,
                          top_k=args.top_k, max_new_tokens=args.max_new_tokens, seed=args.seed, compile=args.compile,
                          tools=loop)
    if args.guard != "off":
        from llmlab.safety.filters import GuardedSession

        session = GuardedSession(session, args.guard)
        print(f"(safety guard: {args.guard}; {session.guard.layers})", file=sys.stderr)
    if args.prompt is None:
        if args.json:
            raise LlmlabError("--json needs --prompt (one-shot mode)")
        return run_repl(session)
    if args.json:
        r = session.reply(args.prompt)
        out = {"text": r.text, "finish_reason": r.finish_reason, "prompt_tokens": r.prompt_tokens,
               "completion_tokens": len(r.token_ids), "model": str(args.model)}
        if loop is not None:
            out.update(tool_calls=r.tool_calls, sources=r.sources)
        if getattr(r, "verdict", None) is not None:
            out["guard"] = r.verdict.to_dict()
        print(json.dumps(out, ensure_ascii=False))
    else:
        r = session.reply(args.prompt, on_text=lambda s: print(s, end="", flush=True))
        print()
        if r.sources:
            print(r.sources)
        if getattr(r, "guard_note", None):
            print(r.guard_note, file=sys.stderr)
    return 0


def _synth(args) -> int:
    from llmlab.tasks.synth import write_synth

    print(json.dumps(write_synth(layered(SynthConfig, given_flags(args, SynthConfig)))))
    return 0
