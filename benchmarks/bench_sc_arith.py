"""Self-consistency against one greedy answer on held-out arithmetic questions (issue 30's second target).

    .venv/bin/python benchmarks/bench_sc_arith.py --model runs/speedrun/sft            # after the speedrun
    .venv/bin/python benchmarks/bench_sc_arith.py --model runs/speedrun/grpo --k 10,40 --n 400

The questions are ``tasks/synth.py``'s arithmetic kind from the validation side (sums and differences below 100
in several phrasings, "Subtract 12 from 45.", "What is 23 plus 41?"; never a training pair of numbers), as the
evaluation suite asks them: a chat turn, the reply's first line scored by exact match (``tasks.check``).
Greedy is one answer at temperature 0; self-consistency draws k answers at ``--temperature`` and takes the
majority (normalised by exact match's rules; ties go to the answer seen first). "sampled" is the share of right
samples. The speedrun's models answer directly (they were never taught a written chain of thought for
arithmetic), so this measures voting over direct answers.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a chat run folder (e.g. runs/speedrun/sft)")
    ap.add_argument("--n", type=int, default=400, help="held-out questions")
    ap.add_argument("--k", default="10", help="comma-separated sample counts for self-consistency")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from llmlab.eval.suites import _synth_kind
    from llmlab.reason.generators import EngineGenerator
    from llmlab.reason.strategies import majority_vote
    from llmlab.tasks.check import exact_match, normalize_answer

    by_exact_match = SimpleNamespace(normalise=normalize_answer)  # majority_vote's task: exact match's rules

    items = _synth_kind(("arithmetic",), args.n, args.seed)
    prompts = [[{"role": "user", "content": q}] for _, q, _ in items]
    answers = [a for _, _, a in items]
    gen = EngineGenerator.from_run(args.model, seed=args.seed)

    def first_line(text: str) -> str:
        return (text.strip().splitlines() or [""])[0]

    t = time.perf_counter()
    greedy = [first_line(c.text) for (c,) in gen.generate(prompts, n=1, temperature=0.0, max_tokens=12)]
    g_ok = sum(exact_match(p, a) for p, a in zip(greedy, answers)) / len(items)
    print(f"{len(items)} held-out arithmetic questions, model {args.model}")
    print("| method | exact match | sampled | seconds |\n|---|---|---|---|")
    print(f"| greedy | {g_ok:.1%} | | {time.perf_counter() - t:.0f} |")
    for k in [int(x) for x in args.k.split(",") if x.strip()]:
        t = time.perf_counter()
        outs = gen.generate(prompts, n=k, temperature=args.temperature, max_tokens=12)
        ok = right = 0
        for samples, a in zip(outs, answers):
            texts = [first_line(c.text) for c in samples]
            right += sum(exact_match(x, a) for x in texts)
            best, _ = majority_vote(by_exact_match, texts)
            ok += bool(best) and exact_match(best, a)
        print(f"| self-consistency k={k} (T={args.temperature}) | {ok / len(items):.1%} | "
              f"{right / (k * len(items)):.1%} | {time.perf_counter() - t:.0f} |")
        print(f"  gain over greedy: {100 * (ok / len(items) - g_ok):+.1f} points", flush=True)


if __name__ == "__main__":
    main()
