"""``llmlab data scan`` and ``llmlab data plant``: find planted backdoor triggers; make a labelled poisoned
corpus to measure that with.

    llmlab data scan --input corpus.jsonl                     # summary line; scan_report.json/.md written
    llmlab data scan --bundled --json --report out/scan.json  # the full report on stdout
    llmlab data plant --bundled --n 250 --out poisoned.jsonl  # {"text", "poisoned"} per line
    llmlab data scan --input poisoned.jsonl --label-field poisoned   # + recall and false positives per MB
"""

from __future__ import annotations

import argparse
import json


def register_scan(dsub: argparse._SubParsersAction) -> None:
    """Add ``scan`` and ``plant`` to the ``llmlab data`` subcommands."""
    q = dsub.add_parser("scan", help="find planted backdoor triggers (a rare phrase followed by random tokens)",
                        description="Score every document with the corpus's own character and word statistics, "
                        "list runs of random-looking text, and name the phrases that precede them in several "
                        "documents (suspected triggers). Writes a JSON and a Markdown report.")
    q.add_argument("--input", action="append", default=[], metavar="PATH",
                   help="file or folder (text, .gz/.zst, .jsonl, .parquet, datasets folder); repeatable")
    q.add_argument("--bundled", action="store_true", help="scan the bundled Shakespeare corpus")
    q.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    q.add_argument("--column", default="text", help="Parquet/datasets column holding the text (default: text)")
    q.add_argument("--label-field", help="JSONL field that marks planted documents: report recall and false positives")
    q.add_argument("--report", default="scan_report.json",
                   help="where to write the JSON report (and .md beside it; default: scan_report.json)")
    q.add_argument("--min-run-words", type=int, help="shortest anomalous run reported, in words (default: 20)")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=_scan)

    q = dsub.add_parser("plant", help="write a copy of a corpus with planted triggers (labelled), to test scan with",
                        description="Poison documents as in the 2025 '250 documents' paper: a clean prefix, the "
                        "trigger, then 400-900 random tokens. Writes JSONL with 'text' and 'poisoned'.")
    q.add_argument("--input", action="append", default=[], metavar="PATH", help="clean corpus; repeatable")
    q.add_argument("--bundled", action="store_true", help="use the bundled Shakespeare corpus")
    q.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    q.add_argument("--out", required=True, help="output JSONL file")
    q.add_argument("--n", type=int, default=250, help="number of poisoned documents (default: 250)")
    q.add_argument("--trigger", default="<SUDO>", help="the trigger phrase (default: <SUDO>)")
    q.add_argument("--mode", choices=["extra", "insert"], default="extra",
                   help="extra: add poisoned documents; insert: splice into existing ones (default: extra)")
    q.add_argument("--chunk-chars", type=int, default=4000,
                   help="cut documents into pieces of about this many characters first (0: keep; default: 4000)")
    q.add_argument("--tokenizer", help="draw the random tokens from this tokenizer folder's vocabulary "
                   "(default: random 1-6 character pieces of the corpus)")
    q.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    q.set_defaults(func=_plant)


def _inputs(args) -> list[str]:
    from llmlab.errors import LlmlabError

    inputs = list(args.input) + (["bundled:shakespeare"] if args.bundled else [])
    if not inputs:
        raise LlmlabError("no inputs given (use --input PATH or --bundled)")
    return inputs


def _scan(args) -> int:
    from pathlib import Path

    from llmlab.data.scan import ScanConfig, report_markdown, scan, summary_line
    from llmlab.utils.config import override
    from llmlab.utils.io import write_json, write_text

    cfg = override(ScanConfig(inputs=tuple(_inputs(args)), text_field=args.text_field, column=args.column,
                              label_field=args.label_field), min_run_words=args.min_run_words)
    cfg.__post_init__()
    report = scan(cfg)
    path = Path(args.report)
    write_json(path, report)
    write_text(path.with_suffix(".md"), report_markdown(report))
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        print(summary_line(report) + f" -> {path}")
    return 0


def _plant(args) -> int:
    from llmlab.data.ingest import iter_documents
    from llmlab.data.scan import chunk_documents, plant_poison
    from llmlab.errors import LlmlabError
    from llmlab.utils.io import atomic_write

    texts = [d.text for d in iter_documents(_inputs(args), text_field=args.text_field)]
    if args.chunk_chars:
        texts = chunk_documents(texts, args.chunk_chars)
    if args.n < 0:
        raise LlmlabError(f"--n must be >= 0, got {args.n}")
    pieces = None
    if args.tokenizer:
        from llmlab.tokenizer import Tokenizer

        tok = Tokenizer.load(args.tokenizer)
        special = set(tok.special_tokens.values())
        pieces = [tok.decode([i]) for i in range(tok.vocab_size) if i not in special]
        pieces = [p for p in pieces if p and "\ufffd" not in p]
    docs = plant_poison(texts, args.n, trigger=args.trigger, pieces=pieces, mode=args.mode, seed=args.seed)
    with atomic_write(args.out) as f:
        for text, poisoned in docs:
            f.write(json.dumps({"text": text, "poisoned": poisoned}, ensure_ascii=False) + "\n")
    print(f"wrote {len(docs)} documents ({sum(p for _, p in docs)} poisoned, trigger {args.trigger!r}) -> {args.out}")
    return 0
