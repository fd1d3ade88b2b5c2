"""``llmlab assistant``: custom assistants -- a system prompt, a model, tools and your documents, saved by name.

    llmlab assistant create --name notes --system "Answer from my notes." --docs notes/ --tools search,calc \\
        --model runs/speedrun/sft [--temperature 0.2] [--max-new-tokens 96] [--overwrite]
    llmlab assistant list [--json]
    llmlab assistant show notes
    llmlab assistant update notes          # re-index the documents (only changed files are read)
    llmlab assistant delete notes
    llmlab chat --assistant notes

Profiles live in ``$LLMLAB_HOME/assistants`` (default ``~/.llmlab/assistants``); the library is
``llmlab.tools.assistants``.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assistant", help="custom assistants: system prompt + model + tools + your documents",
                       description="Create, list, show, update and delete saved assistants.")
    asub = p.add_subparsers(dest="assistant_command", metavar="<command>", required=True)
    q = asub.add_parser("create", help="save an assistant (and index its documents)",
                        description="Save an assistant profile; with --docs, index the documents for its search tool.")
    q.add_argument("--name", required=True, help="its name (letters, digits, '.', '_', '-')")
    q.add_argument("--system", default="", help="the system prompt")
    q.add_argument("--docs", default=None, metavar="PATH", help="documents it answers from (adds the search tool)")
    q.add_argument("--tools", default="", metavar="LIST", help="tools: calc, python, search (comma-separated)")
    q.add_argument("--model", default=None, metavar="RUN", help="the model run folder")
    q.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 0.7)")
    q.add_argument("--top-p", type=float, default=None, help="nucleus threshold (default 0.9)")
    q.add_argument("--max-new-tokens", type=int, default=None, help="answer length limit (default 128)")
    q.add_argument("--chunk-chars", type=int, default=None, help="document chunk size (default 400)")
    q.add_argument("--search-k", type=int, default=None, help="passages the search tool returns (default 3)")
    q.add_argument("--overwrite", action="store_true", help="replace an assistant of the same name")
    q.set_defaults(func=_create)
    q = asub.add_parser("list", help="list the saved assistants")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_list)
    for name, helptext, fn in (("show", "print one assistant's profile (JSON)", _show),
                               ("update", "re-index an assistant's documents", _update),
                               ("delete", "delete an assistant and its index", _delete)):
        q = asub.add_parser(name, help=helptext)
        q.add_argument("name", help="the assistant's name")
        q.set_defaults(func=fn)


def _create(args) -> int:
    from llmlab.tools.assistants import create_assistant

    sampling = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p),
                                  ("max_new_tokens", args.max_new_tokens)) if v is not None}
    search = {"k": args.search_k} if args.search_k else {}
    a, summary = create_assistant(args.name, system=args.system, model=args.model, tools=args.tools, docs=args.docs,
                                  sampling=sampling, search=search, overwrite=args.overwrite,
                                  chunk_chars=args.chunk_chars)
    print(json.dumps({"assistant": a.name, "folder": str(a.folder), "tools": a.tools, "index": summary},
                     ensure_ascii=False))
    return 0


def _list(args) -> int:
    from llmlab.tools.assistants import list_assistants

    items = list_assistants()
    if args.json:
        print(json.dumps([a.to_json() for a in items], ensure_ascii=False))
    else:
        for a in items:
            print(f"{a.name}\t{','.join(a.tools) or '-'}\t{a.model or '(no model)'}\t{a.system[:60]}")
        if not items:
            print("no assistants (llmlab assistant create --name NAME ...)")
    return 0


def _show(args) -> int:
    from llmlab.tools.assistants import load_assistant

    a = load_assistant(args.name)
    print(json.dumps({**a.to_json(), "folder": str(a.folder)}, indent=1, ensure_ascii=False))
    return 0


def _update(args) -> int:
    from llmlab.tools.assistants import update_assistant

    a, summary = update_assistant(args.name)
    print(json.dumps({"assistant": a.name, "index": summary}, ensure_ascii=False))
    return 0


def _delete(args) -> int:
    from llmlab.tools.assistants import delete_assistant

    print(f"deleted {delete_assistant(args.name)}")
    return 0
