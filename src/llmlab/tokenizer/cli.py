"""``llmlab tokenizer``: train a byte-level BPE tokenizer, encode, decode, and show how text is cut.

    llmlab tokenizer train --input bundled --vocab-size 4096 --out out/tok     # bundled corpus, train split
    llmlab tokenizer train --input a.txt --input b.txt --vocab-size 8192 --out out/tok [--pattern gpt2]
    llmlab tokenizer encode --tokenizer out/tok --text "To be, or not to be"   # or text on stdin
    llmlab tokenizer decode --tokenizer out/tok --ids "2 3 4"
    llmlab tokenizer show --tokenizer out/tok --text "<|user|>Hello 世界" [--allow-special]
    llmlab tokenizer export-hf --tokenizer out/tok --out out/hf               # HF tokenizer.json
    llmlab tokenizer import --hf some-model/ --out out/tok                    # a model's own tokenizer
    llmlab tokenizer import --gguf model.gguf --out out/tok                   # (encode/decode/show take it too)
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenizer", help="train and use the byte-level BPE tokenizer",
                       description="Train a byte-level BPE tokenizer; encode, decode and show tokens.")
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="<command>", required=True)

    q = tsub.add_parser("train", help="train a tokenizer and save it to --out")
    q.add_argument("--input", action="append", required=True,
                   help="UTF-8 text file, JSONL file or folder to train on (repeatable); 'bundled' = the bundled corpus's "
                   "train split")
    q.add_argument("--vocab-size", type=int, required=True, help="vocabulary size including the 16 special tokens")
    q.add_argument("--out", required=True, help="output folder (tokenizer.json)")
    q.add_argument("--pattern", default="gpt4", help="split regex, or a name: gpt4 (default), gpt2")
    q.set_defaults(func=_train)

    for name, helptext in (("encode", "print the token ids of a text"),
                           ("show", "print each token of a text with its id and bytes")):
        q = tsub.add_parser(name, help=helptext)
        q.add_argument("--tokenizer", required=True, help="tokenizer folder (from 'llmlab tokenizer train')")
        q.add_argument("--text", help="the text (default: read stdin)")
        q.add_argument("--allow-special", action="store_true",
                       help="recognise special-token names such as <|user|> in the text")
        q.set_defaults(func=_encode if name == "encode" else _show)

    q = tsub.add_parser("decode", help="print the text of token ids")
    q.add_argument("--tokenizer", required=True, help="tokenizer folder")
    q.add_argument("--ids", help="ids separated by spaces or commas (default: read stdin)")
    q.set_defaults(func=_decode)

    q = tsub.add_parser("import", help="read a model's own tokenizer (HF folder or GGUF file) and save it to --out",
                        description="Import the tokenizer (and chat template, special tokens, add-BOS rule) of an "
                        "HF folder or a GGUF file into an llmlab tokenizer folder.")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--hf", metavar="DIR", help="Hugging Face folder with tokenizer.json")
    src.add_argument("--gguf", metavar="FILE", help="GGUF file (tokenizer.ggml.* metadata)")
    q.add_argument("--out", required=True, help="output folder (tokenizer.json)")
    q.set_defaults(func=_import)

    q = tsub.add_parser("export-hf", help="write a Hugging Face tokenizer.json")
    q.add_argument("--tokenizer", required=True, help="tokenizer folder")
    q.add_argument("--out", required=True, help="output folder or .json path")
    q.set_defaults(func=_export_hf)


def read_inputs(paths: list[str]) -> list[str]:
    """The texts of ``paths`` through the one document reader (``llmlab.data.ingest``): ``bundled`` = the bundled
    corpus's train split as one text; a file or folder = its documents, as ``llmlab pretrain`` reads them (text,
    .gz/.zst, JSONL, Parquet, the shards of ``llmlab data prepare``); unreadable files are user errors."""
    from llmlab.data.ingest import iter_texts, read_text

    texts = []
    for path in paths:
        if path == "bundled":
            texts.append(read_text(path))
        else:
            texts.extend(iter_texts(path))
    return texts


def train_from_args(inputs: list[str], vocab_size: int, out: str, pattern: str = "gpt4") -> dict:
    """Train, save, and return the summary the CLI prints."""
    import time

    from llmlab.tokenizer import Tokenizer

    texts = read_inputs(inputs)
    t0 = time.perf_counter()
    tok = Tokenizer.train(texts, vocab_size, pattern=pattern)
    seconds = time.perf_counter() - t0
    path = tok.save(out)
    n_bytes = sum(len(t.encode("utf-8", "replace")) for t in texts)
    n_tokens = sum(len(ids) for ids in tok.encode_batch(texts))
    return {"out": str(path.parent), "seconds": round(seconds, 3), "vocab_size": tok.vocab_size,
            "merges": len(tok.merges), "special_tokens": len(tok.special_tokens), "input_bytes": n_bytes,
            "input_tokens": n_tokens, "bytes_per_token": round(n_bytes / max(n_tokens, 1), 4)}


def _train(args) -> int:
    print(json.dumps(train_from_args(args.input, args.vocab_size, args.out, args.pattern)))
    return 0


def _text(args) -> str:
    return args.text if args.text is not None else sys.stdin.read()


def import_tokenizer(hf: str | None, gguf: str | None, out: str) -> dict:
    """Read a model's tokenizer, save it to ``out`` and return the summary the CLI prints."""
    from llmlab.tokenizer.imported import ImportedTokenizer

    tok = ImportedTokenizer.from_hf(hf) if hf else ImportedTokenizer.from_gguf(gguf)
    path = tok.save(out)
    return {"out": str(path.parent), "model": tok.model, "semantics": tok.semantics, "vocab_size": tok.vocab_size,
            "merges": len(tok.merges), "special_tokens": len(tok.special_tokens), "add_bos": tok.add_bos,
            "bos_id": tok.bos_id, "eos_ids": list(tok.eos_ids), "stop_ids": list(tok.stop_ids),
            "chat_template": tok.chat_template is not None, "fast_path": tok.uses_fast_path}


def _import(args) -> int:
    print(json.dumps(import_tokenizer(args.hf, args.gguf, args.out)))
    return 0


def _encode(args) -> int:
    from llmlab.tokenizer import load_tokenizer_dir

    tok = load_tokenizer_dir(args.tokenizer)
    print(" ".join(map(str, tok.encode(_text(args), allowed_special="all" if args.allow_special else ()))))
    return 0


def _decode(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.tokenizer import load_tokenizer_dir

    tok = load_tokenizer_dir(args.tokenizer)
    raw = args.ids if args.ids is not None else sys.stdin.read()
    try:
        ids = [int(x) for x in raw.replace(",", " ").split()]
    except ValueError:
        raise LlmlabError(f"--ids must be integers separated by spaces or commas, got {raw[:60]!r}") from None
    for i in ids:
        tok.token_bytes(i)  # range check with a clear message
    sys.stdout.write(tok.decode(ids))
    if sys.stdout.isatty():
        sys.stdout.write("\n")
    return 0


def show_table(tok, text: str, allow_special: bool = False) -> str:
    """One line per token: position, id, the bytes as hex, and a readable form; special tokens marked."""
    ids = tok.encode(text, allowed_special="all" if allow_special else ())
    lines = [f"{'#':>5} {'id':>7}  {'bytes (hex)':<24} token"]
    for pos, i in enumerate(ids):
        b = tok.token_bytes(i)
        if tok.is_special(i):
            shown = f"{b.decode()}  [special]"
        else:
            # repr shows spaces and newlines unambiguously; a piece of a multi-byte character shows as b'\xe4'
            try:
                shown = repr(b.decode("utf-8"))
            except UnicodeDecodeError:
                shown = repr(b)
        lines.append(f"{pos:>5} {i:>7}  {b.hex(' '):<24} {shown}")
    n = len(text.encode("utf-8", "replace"))
    lines.append(f"{len(ids)} tokens, {n} bytes, {n / max(len(ids), 1):.2f} bytes/token")
    return "\n".join(lines)


def _show(args) -> int:
    from llmlab.tokenizer import load_tokenizer_dir

    tok = load_tokenizer_dir(args.tokenizer)
    print(show_table(tok, _text(args), args.allow_special))
    return 0


def _export_hf(args) -> int:
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.load(args.tokenizer)
    print(json.dumps({"out": str(tok.export_hf(args.out)), "vocab_size": tok.vocab_size}))
    return 0
