"""``llmlab index``: index the user's documents for retrieval, and search the index.

    llmlab index --docs my_docs/ --out my_index               # build, or update (only changed files are read)
    llmlab index --docs my_docs/ --out my_index --rebuild     # start over (another chunk size, an old version)
    llmlab index search --index my_index --query "Who founded Brindle Works?" --k 5 --json

The summary (JSON) counts the files read, unchanged and removed, and lists unreadable files with the reason;
the others are indexed. ``search --json`` prints the hits: rank, BM25 score, relevance, source, position, text.
The library is ``llmlab.tools.retrieval``.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index documents for retrieval (text, markdown, HTML, JSONL, PDF); 'index search'",
                       description="Index a folder of documents (or update an index: only changed files are read). "
                       "Prints a JSON summary.")
    p.add_argument("--docs", metavar="PATH", help="a folder (read recursively) or one file")
    p.add_argument("--out", metavar="INDEX", help="the index folder")
    p.add_argument("--chunk-chars", type=int, default=None,
                   help="largest chunk in characters (default 400; an existing index keeps its own)")
    p.add_argument("--rebuild", action="store_true", help="read every file again and replace the index")
    p.set_defaults(func=_index, index_command=None)
    isub = p.add_subparsers(dest="index_command", metavar="[search]")
    q = isub.add_parser("search", help="search an index; print the best chunks",
                        description="Search an index with BM25; print the best chunks (source, position, text).")
    q.add_argument("--index", required=True, metavar="INDEX", help="the index folder")
    q.add_argument("--query", required=True, help="what to look for")
    q.add_argument("--k", type=int, default=5, help="how many chunks")
    q.add_argument("--min-relevance", type=float, default=0.0,
                   help="drop chunks holding less than this share of the query's information (0..1; the search tool "
                   "uses 0.6)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_search)


def _index(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.tools.retrieval import IndexConfig, build_index, read_manifest

    if not args.docs or not args.out:
        raise LlmlabError("index needs --docs PATH and --out INDEX (or 'llmlab index search --index INDEX --query ...')")
    cfg = None
    if args.chunk_chars:
        cfg = IndexConfig(chunk_chars=args.chunk_chars)
    elif not args.rebuild:
        from pathlib import Path

        if (Path(args.out) / "index.json").is_file():  # an update keeps the index's own chunking
            cfg = IndexConfig(**read_manifest(args.out).get("config", {}))
    print(json.dumps(build_index(args.docs, args.out, cfg, rebuild=args.rebuild), ensure_ascii=False))
    return 0


def _search(args) -> int:
    from llmlab.tools.retrieval import Index

    hits = Index.load(args.index).search(args.query, k=args.k, min_relevance=args.min_relevance)
    if args.json:
        print(json.dumps({"query": args.query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
    else:
        for h in hits:
            pos = h.chunk.position
            where = ", ".join(f"{k} {pos[k]}" for k in ("page", "record", "line") if k in pos)
            print(f"[{h.rank}] {h.score:.3f} (relevance {h.relevance:.2f})  {h.chunk.source} ({where})")
            print("    " + " ".join(h.chunk.text.split())[:300])
        if not hits:
            print("no results")
    return 0
