"""``llmlab data``: the bundled corpus (list, read, split) and the cleaning pipeline (prepare).

    llmlab data list
    llmlab data read hamlet
    llmlab data split --out data/shakespeare
    llmlab data prepare --input PATH [--input PATH ...] --out DIR [--drop-poison]
    llmlab data scan --input PATH [--json]          # planted backdoor triggers (data/scan.py)
    llmlab data plant --bundled --n 250 --out poisoned.jsonl
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="the bundled corpus and the data-cleaning pipeline",
                       description="The bundled corpus (list, read, split) and the data-cleaning pipeline (prepare).")
    dsub = p.add_subparsers(dest="data_command", metavar="<command>", required=True)

    q = dsub.add_parser("list", help="list the works of the bundled corpus")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.set_defaults(func=_list)

    q = dsub.add_parser("read", help="print one work of the bundled corpus")
    q.add_argument("work", help="work id (e.g. hamlet) or title (e.g. 'Hamlet')")
    q.set_defaults(func=_read)

    q = dsub.add_parser("split", help="write the standard train/validation split (train.txt, val.txt)")
    q.add_argument("--out", required=True, help="output folder")
    q.set_defaults(func=_split)

    from llmlab.data.pipeline_cli import register_prepare
    from llmlab.data.scan_cli import register_scan

    register_prepare(dsub)
    register_scan(dsub)


def _list(args) -> int:
    from llmlab.data.corpus import list_works

    works = list_works()
    if args.json:
        print(json.dumps([w.__dict__ for w in works], indent=1))
    else:
        for w in works:
            print(f"{w.id:32s} {w.bytes:>8d}  {w.title}")
        print(f"{len(works)} works, {sum(w.bytes for w in works)} bytes")
    return 0


def _read(args) -> int:
    from llmlab.data.corpus import read_work

    print(read_work(args.work), end="")
    return 0


def _split(args) -> int:
    from llmlab.data.corpus import write_split

    print(json.dumps(write_split(args.out)))
    return 0
