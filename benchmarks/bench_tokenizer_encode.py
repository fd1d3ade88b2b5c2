"""Benchmark: encoding throughput, our tokenizer (tiktoken fast path) vs a Hugging Face ``tokenizers`` BPE.

    .venv/bin/python benchmarks/bench_tokenizer_encode.py [--vocab 4096] [--repeat 3] [--chunk-kb 16]

Both tokenizers are trained on the bundled corpus's train split at the same vocab size with the same split
regex (HF with BpeTrainer, as in bench_tokenizer_train.py). Measured on the same text, best of --repeat:

- single: one call on the whole train split (ours: ``Tokenizer.encode``; HF: ``Tokenizer.encode``);
- batched: the train split cut into ~--chunk-kb pieces, all cores (ours: ``encode_batch`` = tiktoken's
  ``encode_ordinary_batch`` on a thread pool; HF: ``encode_batch``, rayon on all cores).

Also checked: our export loaded into HF gives our ids exactly. Targets: >= 3x HF single, >= 2x batched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk-kb", type=int, default=16, help="piece size for the batched runs")
    args = ap.parse_args()

    import tempfile

    import tokenizers

    from bench_tokenizer_train import best_times, pieces, train_hf
    from llmlab.data.corpus import standard_split
    from llmlab.tokenizer import GPT4_PATTERN, SPECIAL_TOKENS, Tokenizer

    train, _ = standard_split()
    n_bytes = len(train.encode("utf-8"))
    docs = pieces(train, args.chunk_kb * 1024)
    assert "".join(docs) == train
    ours = Tokenizer.train(train, args.vocab)
    hf = train_hf([train], args.vocab, GPT4_PATTERN, list(SPECIAL_TOKENS))
    ours.encode("warm up")  # builds the tiktoken Encoding (once per tokenizer), not part of the encode timing
    with tempfile.TemporaryDirectory() as d:
        ours_in_hf = tokenizers.Tokenizer.from_file(str(ours.export_hf(d)))
    cores = os.cpu_count()
    print(f"train split {n_bytes:,} bytes; {len(docs)} pieces of ~{args.chunk_kb} KB; {cores} cores; "
          f"vocab {args.vocab}")

    (ours_single, ids), (hf_single, hf_enc), (ours_batch, batch_ids), (hf_batch, _) = best_times(
        [lambda: ours.encode(train), lambda: hf.encode(train), lambda: ours.encode_batch(docs),
         lambda: hf.encode_batch(docs)], args.repeat)
    assert [i for b in batch_ids for i in b] == ids  # cutting at safe points changes nothing
    assert ours_in_hf.encode(train).ids == ids, "HF with our export must give our ids"

    mb = n_bytes / 1e6
    rows = {
        "single": {"ours_MBps": round(mb / ours_single, 2), "hf_MBps": round(mb / hf_single, 2),
                   "ratio": round(hf_single / ours_single, 2)},
        "batched": {"ours_MBps": round(mb / ours_batch, 2), "hf_MBps": round(mb / hf_batch, 2),
                    "ratio": round(hf_batch / ours_batch, 2), "threads": cores},
        "tokens": {"ours": len(ids), "hf": len(hf_enc.ids)},
    }
    for k in ("single", "batched"):
        r = rows[k]
        print(f"{k:>8}: ours {r['ours_MBps']:7.2f} MB/s   HF {r['hf_MBps']:7.2f} MB/s   ours/HF {r['ratio']:5.2f}x")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
