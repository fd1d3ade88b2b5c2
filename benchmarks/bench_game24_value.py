"""The Game of 24's value step alone: how often the model's own judgement of a state agrees with the solver's,
on the states a search meets for the validation puzzles (ranks 1001-1050, held out of training).

    .venv/bin/python benchmarks/bench_game24_value.py --model runs/game24                 # 3 samples at T=1
    .venv/bin/python benchmarks/bench_game24_value.py --model runs/game24 --temperature 0  # one greedy reply

States: every first move's three numbers (what ToT's first level values) and every move's two numbers from
the three-number states that can still make 24 (what its second level values from good parents). Per size:
accuracy of each sampled verdict against ``tasks.game24.value_label`` (sure and likely counted together as
"can make 24"), recall and precision of "can make 24", tokens per reply, and, for worked replies, the share of
``a op b = c`` lines whose arithmetic is right. "top-5 hit": for each puzzle, whether one of the five
three-number states ranked highest by the summed value (``VALUE_WEIGHTS``, the search's own ranking; ties in
random order) can make 24 -- the first level of ToT b=5 with every move proposed. The solver only scores.
"""

from __future__ import annotations

import argparse
import random
import re
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="run folder (llmlab reason train --task game24 --out RUN)")
    ap.add_argument("--ranks", default="1001-1050", help="puzzle ranks (default: the validation puzzles)")
    ap.add_argument("--samples", type=int, default=3, help="value samples per state (the search's n_evaluate)")
    ap.add_argument("--temperature", type=float, default=1.0, help="0 = one greedy reply (counted --samples times)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--two", type=int, default=1500, help="at most this many two-number states (a random sample)")
    args = ap.parse_args()

    from llmlab.reason.generators import EngineGenerator
    from llmlab.reason.tasks import VALUE_WEIGHTS
    from llmlab.tasks.game24 import format_numbers, load_puzzles, next_steps, parse_number, reachable, value_label
    from llmlab.tasks.game24_text import parse_value, value_messages

    lo, _, hi = args.ranks.partition("-")
    puzzles = [p.numbers for p in load_puzzles() if int(lo) <= p.rank <= int(hi or lo)]
    three = {p: sorted({s.left for s in next_steps(p)}) for p in puzzles}
    two = sorted({s.left for states in three.values() for t in states if reachable(t) for s in next_steps(t)})
    rng = random.Random(args.seed)
    if len(two) > args.two:
        two = sorted(rng.sample(two, args.two))
    states = sorted({s for v in three.values() for s in v}) + two
    gen = EngineGenerator.from_run(args.model, seed=args.seed)
    greedy = args.temperature == 0
    t = time.perf_counter()
    outs = gen.generate([value_messages(s) for s in states], n=1 if greedy else args.samples,
                        temperature=args.temperature, max_tokens=args.max_tokens)
    seconds = time.perf_counter() - t
    verdicts, stats = {}, {}
    line_re = re.compile(r"(-?\d+(?:/\d+)?) ([-+*/]) (-?\d+(?:/\d+)?) = (-?\d+(?:/\d+)?)")
    for s, samples in zip(states, outs):
        words = [parse_value(c.text) for c in samples] * (args.samples if greedy else 1)
        verdicts[s] = words
        st = stats.setdefault(len(s), {"n": 0, "right": 0, "pos": 0, "pos_said": 0, "true_pos": 0, "said_pos": 0,
                                       "tokens": 0, "replies": 0, "lines": 0, "lines_ok": 0, "none": 0})
        truth = value_label(s) != "impossible"
        for w in words:
            said = w in ("sure", "likely")
            st["n"] += 1
            st["right"] += said == truth
            st["pos"] += truth
            st["said_pos"] += said
            st["true_pos"] += said and truth
            st["none"] += w is None
        for c in samples:
            st["tokens"] += c.tokens
            st["replies"] += 1
            for a, op, b, r in line_re.findall(c.text):
                try:
                    a, b, r = parse_number(a), parse_number(b), parse_number(r)
                    ok = r == {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[op]
                except (ValueError, ZeroDivisionError):
                    ok = False
                st["lines"] += 1
                st["lines_ok"] += ok

    print(f"model {args.model}, ranks {args.ranks}: {len(puzzles)} puzzles, {len(states)} states, "
          f"{'greedy' if greedy else f'{args.samples} samples at T={args.temperature}'}, {seconds:.0f} s")
    print("| numbers | states | verdicts right | recall (can make 24) | precision | no verdict | tokens/reply | "
          "lines right |")
    print("|---|---|---|---|---|---|---|---|")
    for size in sorted(stats, reverse=True):
        st = stats[size]
        n_states = st["n"] // args.samples
        lines = f"{st['lines_ok'] / st['lines']:.1%} of {st['lines']}" if st["lines"] else "-"
        print(f"| {size} | {n_states} | {st['right'] / st['n']:.1%} | {st['true_pos'] / max(1, st['pos']):.1%} | "
              f"{st['true_pos'] / max(1, st['said_pos']):.1%} | {st['none'] / st['n']:.1%} | "
              f"{st['tokens'] / st['replies']:.1f} | {lines} |")
    hits = 0
    for p, level in three.items():
        value = {s: sum(VALUE_WEIGHTS.get(w, 0.0) for w in verdicts[s]) for s in level}
        order = sorted(level, key=lambda s: (-value[s], rng.random()))
        hits += any(reachable(s) for s in order[:5])
    good = sum(any(reachable(s) for s in level) for level in three.values())
    print(f"\ntop-5 hit (a state that can make 24 among the 5 best-valued first moves): {hits}/{len(puzzles)} "
          f"(ceiling {good}); states formatted as {format_numbers(states[0])} ...")


if __name__ == "__main__":
    from llmlab.errors import LlmlabError

    try:
        main()
    except LlmlabError as e:  # a missing run folder, a bad puzzle file: one line, not a traceback
        raise SystemExit(f"{__file__.rsplit('/', 1)[-1]}: {e}") from None
