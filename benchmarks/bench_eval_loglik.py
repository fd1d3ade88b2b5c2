"""Multiple-choice scoring speed: each context run once (``eval/loglik.py``) vs every (context + option) row whole.

    .venv/bin/python benchmarks/bench_eval_loglik.py                        # the cloze task, the `cpu` preset
    .venv/bin/python benchmarks/bench_eval_loglik.py --task minimal_pairs   # options share only <|bos|>
    .venv/bin/python benchmarks/bench_eval_loglik.py --preset gpt2-small --vocab-size 50257 --items 100

The peer is what lm-evaluation-harness's Hugging Face model does: every (context + continuation) row through a
full forward, right-padded, batched, the continuation's log-probs read off the logits. Ours groups the rows by
context, runs each distinct context once and the options against its keys/values. Same model (random weights:
speed does not depend on them), same items, same batch of rows; the two results are checked to agree, then
timed alternately, best of ``--repeats``. Prints items/s of both and the ratio, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time


def whole_rows(model, pairs, batch_rows):
    """The peer: each row = context + continuation[:-1], right-padded; a sum of the continuation's log-probs."""
    import torch

    from llmlab.model.sequences import token_logprobs

    out = []
    with torch.no_grad():
        for s in range(0, len(pairs), batch_rows):
            chunk = pairs[s: s + batch_rows]
            T = max(len(c) + len(k) - 1 for c, k in chunk)
            ids = torch.zeros(len(chunk), T, dtype=torch.long)
            tgt = torch.zeros(len(chunk), T, dtype=torch.long)
            mask = torch.zeros(len(chunk), T)
            for b, (c, k) in enumerate(chunk):
                row = c + k
                ids[b, : len(row) - 1] = torch.tensor(row[:-1])
                tgt[b, : len(row) - 1] = torch.tensor(row[1:])
                mask[b, len(c) - 1: len(row) - 1] = 1
            lp = token_logprobs(model(ids), tgt)  # (B, T)
            out += (lp * mask).sum(1).tolist()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="cloze", help="built-in choice task (cloze, minimal_pairs, facts)")
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--batch-rows", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    args = ap.parse_args()

    import torch

    from llmlab.eval.backends import LocalBackend
    from llmlab.eval.loglik import score_continuations
    from llmlab.eval.suite import _choice_requests
    from llmlab.eval.suites import builtin_task
    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.tokenizer import Tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    from llmlab.data.corpus import standard_split

    tok = Tokenizer.train(standard_split()[0][:300_000], vocab_size=args.vocab_size)
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset(args.preset, vocab_size=tok.vocab_size)).eval()
    task = builtin_task(args.task, n=args.items)
    be = LocalBackend(model, tok)
    how = "text" if task.style == "text" else "qa-text"
    pairs = [be.encode_pair(r) for it in task.items for r in _choice_requests(task, it, how)]
    ctx_tokens = sum(len(c) for c, _ in pairs) / len(pairs)
    cont_tokens = sum(len(k) for _, k in pairs) / len(pairs)
    a = [s.logprob for s in score_continuations(model, pairs, batch_rows=args.batch_rows)]
    b = whole_rows(model, pairs, args.batch_rows)
    worst = max(abs(x - y) for x, y in zip(a, b))
    assert worst < 1e-2, worst
    best = {"ours": float("inf"), "whole rows": float("inf")}
    for _ in range(args.repeats):
        t = time.perf_counter()
        score_continuations(model, pairs, batch_rows=args.batch_rows)
        best["ours"] = min(best["ours"], time.perf_counter() - t)
        t = time.perf_counter()
        whole_rows(model, pairs, args.batch_rows)
        best["whole rows"] = min(best["whole rows"], time.perf_counter() - t)
    n = len(task.items)
    print(f"{args.task}: {n} items, {len(pairs)} options, {ctx_tokens:.0f} context + {cont_tokens:.1f} option tokens "
          f"per row; {args.preset} preset, vocab {tok.vocab_size}, {args.threads or torch.get_num_threads()} thread(s); "
          f"max |difference| {worst:.1e} nats")
    for k, v in best.items():
        print(f"  {k:<11} {v:7.3f} s  {n / v:8.1f} items/s")
    print(f"  ratio: {best['whole rows'] / best['ours']:.2f}x  (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
