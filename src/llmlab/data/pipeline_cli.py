"""``llmlab data prepare``: flags -> ``PrepareConfig`` -> ``pipeline.prepare``.

    llmlab data prepare --input corpus/ --input more.jsonl --out data/prepared
    llmlab data prepare --bundled --out data/prepared --format txt
    llmlab data prepare --input web.parquet --column content --no-filter top_ngram --out data/web
    llmlab data prepare --input crawl.jsonl --drop-poison --out data/crawl   # drop what `data scan` flags
"""

from __future__ import annotations

import argparse

from llmlab.data.filters import FILTERS


def register_prepare(dsub: argparse._SubParsersAction) -> None:
    """Add ``prepare`` to the ``llmlab data`` subcommands."""
    q = dsub.add_parser(
        "prepare", help="clean, scrub PII, filter and deduplicate a corpus into sharded JSONL/text",
        description="Ingest text/JSONL/Parquet/datasets inputs, clean them (Unicode, whitespace), replace "
        "sensitive information, apply Gopher/C4 quality filters, remove exact and near duplicates, and write "
        "shards plus report.json/report.md/config.json to --out.")
    q.add_argument("--input", action="append", default=[], metavar="PATH",
                   help="file or folder (text, .gz/.zst, .jsonl, .parquet, datasets save_to_disk folder) or "
                   "bundled:shakespeare; repeatable")
    q.add_argument("--bundled", action="store_true", help="add the bundled Shakespeare corpus as an input")
    q.add_argument("--out", required=True, help="output folder (created atomically)")
    q.add_argument("--overwrite", action="store_true", help="replace --out if it exists and is not empty")
    q.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    q.add_argument("--column", default="text", help="Parquet/datasets column holding the text (default: text)")
    q.add_argument("--format", choices=["jsonl", "txt"], default="jsonl", help="shard format (default: jsonl)")
    q.add_argument("--shard-mb", type=float, default=64.0, help="maximum shard size in MB (default: 64)")
    q.add_argument("--seed", type=int, default=0, help="seed of the MinHash permutations (default: 0)")
    q.add_argument("--no-filter", action="append", default=[], choices=FILTERS, metavar="NAME",
                   help=f"switch a quality filter off; repeatable; one of: {', '.join(FILTERS)}")
    q.add_argument("--min-words", type=int, help="drop documents with fewer words (default: 50)")
    q.add_argument("--max-words", type=int, help="drop documents with more words (default: 1000000)")
    q.add_argument("--no-pii", action="store_true", help="keep e-mails, phones, IPs, cards and secrets")
    q.add_argument("--no-exact-dedup", action="store_true", help="keep exact duplicates")
    q.add_argument("--no-near-dedup", action="store_true", help="keep near duplicates (skip MinHash/LSH)")
    q.add_argument("--dedup-threshold", type=float, default=0.8,
                   help="Jaccard similarity of word 5-gram sets above which a document is a near duplicate (default: 0.8)")
    q.add_argument("--num-perm", type=int, default=128, help="MinHash signature length (default: 128)")
    q.add_argument("--drop-poison", action="store_true",
                   help="scan for planted backdoor triggers first (llmlab data scan) and drop the flagged documents")
    q.add_argument("--workers", type=int, default=1,
                   help="processes for cleaning/PII/filters; dedup stays in one process (default: 1)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    q.set_defaults(func=_prepare)


def _prepare(args) -> int:
    from llmlab.data.filters import FilterConfig
    from llmlab.data.pipeline import PrepareConfig, prepare, summary_line
    from llmlab.errors import LlmlabError
    from llmlab.utils.config import override

    inputs = list(args.input) + (["bundled:shakespeare"] if args.bundled else [])
    if not inputs:
        raise LlmlabError("no inputs given (use --input PATH or --bundled)")
    if args.shard_mb <= 0:
        raise LlmlabError(f"--shard-mb must be positive, got {args.shard_mb}")
    filters = override(FilterConfig(), min_words=args.min_words, max_words=args.max_words,
                       disabled=tuple(dict.fromkeys(args.no_filter)))
    cfg = PrepareConfig(
        inputs=tuple(inputs), out=args.out, text_field=args.text_field, column=args.column, format=args.format,
        shard_bytes=int(args.shard_mb * (1 << 20)), seed=args.seed, pii=not args.no_pii,
        exact_dedup=not args.no_exact_dedup, near_dedup=not args.no_near_dedup,
        dedup_threshold=args.dedup_threshold, num_perm=args.num_perm, filters=filters, overwrite=args.overwrite,
        workers=args.workers, drop_poison=args.drop_poison)
    report = prepare(cfg, progress=not args.no_progress)
    print(summary_line(report) + f" -> {args.out}")
    return 0
