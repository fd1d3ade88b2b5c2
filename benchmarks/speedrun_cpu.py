"""The CPU speedrun: pretrain on the bundled train split for 180 s of training, score bits per byte on its
validation split. Reference: nanoGPT's CPU recipe (char-level, 4 layers, 128 wide, context 64) reaches 2.45
bpb here in 180 s; target <= 2.15. The tokenizer is trained first (on the train split only) and not timed.

    .venv/bin/python benchmarks/speedrun_cpu.py -- --threads 1        # the defaults of `llmlab pretrain`, 1 thread
    .venv/bin/python benchmarks/speedrun_cpu.py --label wide -- --preset depth-3 --vocab-size 1024 --lr 5e-3

Everything after ``--`` goes to ``llmlab pretrain`` unchanged (``--vocab-size`` also picks the cached tokenizer).
Each run goes to runs/speedrun_cpu/<label>/ and appends one JSON line (bpb, steps, tokens/s, load average before
and after: the machine is shared, so throughput is noisy) to runs/speedrun_cpu/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "speedrun_cpu"


def tokenizer_dir(vocab_size: int) -> Path:
    """A tokenizer trained on the train split only, cached per vocabulary size (not part of the 180 s)."""
    d = OUT / "tokenizers" / f"v{vocab_size}"
    if not (d / "tokenizer.json").exists() and not (d.is_dir() and any(d.iterdir())):
        from llmlab.data.corpus import standard_split
        from llmlab.tokenizer import Tokenizer

        t0 = time.time()
        Tokenizer.train(standard_split()[0], vocab_size).save(d)
        print(f"tokenizer v{vocab_size}: trained in {time.time() - t0:.1f}s", file=sys.stderr)
    return d


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="default", help="run name (folder under runs/speedrun_cpu)")
    ap.add_argument("--time-budget", type=float, default=180.0)
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    vocab = 2048
    if "--vocab-size" in extra:
        vocab = int(extra[extra.index("--vocab-size") + 1])
        i = extra.index("--vocab-size")
        extra = extra[:i] + extra[i + 2 :]
    else:
        from llmlab.train.configs import PretrainConfig

        vocab = PretrainConfig.vocab_size
    tok = tokenizer_dir(vocab)
    run = OUT / args.label
    shutil.rmtree(run, ignore_errors=True)
    cmd = [sys.executable, "-m", "llmlab", "pretrain", "--data", "bundled", "--out", str(run), "--tokenizer", str(tok),
           "--time-budget", str(args.time_budget), "--no-progress", *extra]
    load_before = loadavg()
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        print(p.stderr[-3000:], file=sys.stderr)
        raise SystemExit(p.returncode)
    s = json.loads((run / "summary.json").read_text())
    rec = {"label": args.label, "args": f"--vocab-size {vocab} " + " ".join(extra), "val_bpb": round(s["val_bpb"], 4),
           "val_loss": round(s["val_loss"], 4), "steps": s["steps"], "tokens": s["tokens"],
           "tokens_per_sec": s["tokens_per_sec"], "params": s["params"], "train_seconds": s["seconds"],
           "wall_seconds": round(wall, 1), "load_before": load_before, "load_after": loadavg(),
           "time": time.strftime("%H:%M:%S", time.gmtime())}
    with open(OUT / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
