"""Benchmark: encoding speed of imported tokenizers (``ImportedTokenizer``) vs Hugging Face ``tokenizers`` on the
same ``tokenizer.json``, in one run.

    .venv/bin/python benchmarks/bench_tokenizer_import.py [--vocab 8192] [--mb 1.0] [--repeat 3] [--chunk-kb 16]

Three tokenizers of the kinds Llama-family models ship are trained with HF's BpeTrainer on the bundled corpus's
train split (the first --mb MB of it) and saved as HF folders, then imported:

- ``llama3``: byte-level BPE, Llama-3's split regex (our fast path: tiktoken);
- ``smollm``: byte-level BPE, SmolLM's Digits + ByteLevel pre-tokenizer (two split steps: our own merge loop
  with a word cache);
- ``llama2``: SentencePiece-style BPE with ``<0xNN>`` byte fallback (tiktoken on ``▁`` pieces).

For each: the import time (reading tokenizer.json and the one-off fast-path check), then best of --repeat on
the same text, sides alternating: a single ``encode`` of the whole text, and ``encode_batch`` of ~--chunk-kb
pieces. The ids must be equal to HF's (asserted). Prints MB/s and ours/HF ratios, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build(kind: str, text: str, vocab: int, out: Path) -> Path:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    llama3 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
              r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
    tok = Tokenizer(models.BPE(byte_fallback=kind == "llama2", unk_token="<unk>" if kind == "llama2" else None))
    specials = ["<unk>", "<s>", "</s>"] if kind == "llama2" else ["<|begin_of_text|>", "<|im_start|>", "<|im_end|>"]
    if kind == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(llama3), behavior="isolated"),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif kind == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet() if kind != "llama2" else []
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator([text], trainer=trainer)
    if kind == "llama2":
        # Llama-2's layout: byte tokens in the vocabulary, whole texts as one word (split=False).
        d = json.loads(tok.to_str())
        v = {s: i for s, i in d["model"]["vocab"].items()}
        for b in range(256):
            v.setdefault(f"<0x{b:02X}>", len(v))
        d["model"]["vocab"] = v
        d["pre_tokenizer"]["split"] = False
        d["decoder"] = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"},
                                                          "content": " "}, {"type": "ByteFallback"},
                                                         {"type": "Fuse"}, {"type": "Strip", "content": " ",
                                                                            "start": 1, "stop": 0}]}
        tok = Tokenizer.from_str(json.dumps(d))
    else:
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--mb", type=float, default=1.0, help="MB of the train split to train on and encode")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk-kb", type=int, default=16, help="piece size for the batched runs")
    ap.add_argument("--kinds", default="llama3,smollm,llama2")
    args = ap.parse_args()

    import tokenizers

    from bench_tokenizer_train import best_times, pieces
    from llmlab.data.corpus import standard_split
    from llmlab.tokenizer.imported import ImportedTokenizer

    train, _ = standard_split()
    text = train[: int(args.mb * 1e6)]
    docs = pieces(text, args.chunk_kb * 1024)
    mb = len(text.encode("utf-8")) / 1e6
    print(f"{mb:.2f} MB of the train split, {len(docs)} pieces of ~{args.chunk_kb} KB, vocab {args.vocab}, "
          f"{os.cpu_count()} cores")
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        for kind in args.kinds.split(","):
            folder = build(kind, text, args.vocab, Path(d) / kind)
            hf = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
            t0 = time.perf_counter()
            ours = ImportedTokenizer.from_hf(folder)
            import_s = time.perf_counter() - t0
            ours.encode("warm up")  # builds the tiktoken Encoding once
            (o1, ids), (h1, henc), (o2, bids), (h2, _) = best_times(
                [lambda: ours.encode(text), lambda: hf.encode(text, add_special_tokens=False),
                 lambda: ours.encode_batch(docs), lambda: hf.encode_batch(docs, add_special_tokens=False)],
                args.repeat)
            assert ids == henc.ids, f"{kind}: ids differ from HF"
            assert [i for b in bids for i in b] == [i for doc in docs for i in hf.encode(doc, add_special_tokens=False).ids]
            rows[kind] = {"fast_path": ours.uses_fast_path, "import_s": round(import_s, 2),
                          "single": {"ours_MBps": round(mb / o1, 2), "hf_MBps": round(mb / h1, 2),
                                     "ratio": round(h1 / o1, 2)},
                          "batched": {"ours_MBps": round(mb / o2, 2), "hf_MBps": round(mb / h2, 2),
                                      "ratio": round(h2 / o2, 2)}}
            r = rows[kind]
            print(f"{kind:>7} ({'tiktoken' if r['fast_path'] else 'own loop'}, import {import_s:.2f}s): "
                  f"single ours {r['single']['ours_MBps']:6.2f} MB/s HF {r['single']['hf_MBps']:6.2f} "
                  f"ours/HF {r['single']['ratio']:5.2f}x | batched ours {r['batched']['ours_MBps']:6.2f} HF "
                  f"{r['batched']['hf_MBps']:6.2f} ours/HF {r['batched']['ratio']:5.2f}x")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
