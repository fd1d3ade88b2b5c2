"""Self-consistency against one greedy answer on held-out arithmetic questions (issue 30's second target).

    .venv/bin/python benchmarks/bench_sc_arith.py --model runs/speedrun/sft            # after the speedrun
    .venv/bin/python benchmarks/bench_sc_arith.py --model runs/speedrun/grpo --k 10,40 --n 400
    .venv/bin/python benchmarks/bench_sc_arith.py --cot --model runs/arith --k 10,40 --n 500   # word problems

``--cot``: multi-step arithmetic word problems (``tasks/arith_word.py``) with a model that writes a chain of
thought (``llmlab reason train --task arith``). Greedy CoT (temperature 0) against CoT-SC (k chains at one
temperature, majority over the normalised answers: ``reason.strategies``, as ``llmlab reason --method cot-sc``)
and direct answers (IO, greedy), on the first ``--n`` test-split problems (the run's ``data/test.txt``). The
SC temperature is the best of ``--temperatures`` for CoT-SC k=``--val-k`` on ``--n-val`` validation-split
problems (greedy CoT on them is printed too); the test problems never choose a setting; ``--n 0`` stops after
validation (for comparing recipes). The problems have the model's own event counts (``reason train --events``;
``--events`` overrides). Accuracy +- its standard error (sqrt(p(1-p)/n)); the gain
over greedy CoT +- the paired standard error (of the per-problem differences). ``--out FILE``: the table as JSON.

Without ``--cot``, the questions are ``tasks/synth.py``'s arithmetic kind from the validation side (sums and differences below 100
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
    ap.add_argument("--cot", action="store_true", help="word problems with a chain of thought (a reason run)")
    ap.add_argument("--temperatures", default="0.5,0.7,1.0", help="--cot: SC temperatures tried on validation")
    ap.add_argument("--n-val", type=int, default=200, help="--cot: validation problems for the temperature")
    ap.add_argument("--val-k", type=int, default=10, help="--cot: SC samples per validation problem")
    ap.add_argument("--no-io", action="store_true", help="--cot: skip the direct-answer row")
    ap.add_argument("--events", default=None,
                    help="--cot: events per problem, e.g. 3,4 (default: the model's own, from its training run)")
    ap.add_argument("--out", default=None, help="--cot: write the table as JSON here")
    args = ap.parse_args()
    if args.cot:
        return cot_table(args)

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


def _se(oks: list[bool]) -> float:
    p = sum(oks) / len(oks)
    return (p * (1 - p) / len(oks)) ** 0.5


def _paired_se(a: list[bool], b: list[bool]) -> float:
    d = [int(x) - int(y) for x, y in zip(a, b)]
    m = sum(d) / len(d)
    return (sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d)) ** 0.5


def _events(args) -> tuple[int, ...]:
    """The problems' event counts: ``--events``, else the model's training run's (``extra["arith_events"]`` of
    its model_config.json; runs from before the knob drew 2 or 3)."""
    import json
    from pathlib import Path

    if args.events:
        return tuple(int(x) for x in args.events.split(","))
    extra = json.loads((Path(args.model) / "model_config.json").read_text()).get("extra") or {}
    return tuple(extra.get("arith_events", (2, 3)))


def cot_table(args) -> None:
    from llmlab.reason.generators import EngineGenerator
    from llmlab.reason.runner import run_puzzles
    from llmlab.reason.strategies import StrategyConfig
    from llmlab.reason.tasks import get_task
    from llmlab.tasks.arith_word import problems
    from llmlab.utils.io import write_json

    task = get_task("arith")
    gen = EngineGenerator.from_run(args.model, seed=args.seed)
    events = _events(args)

    def run(puzzles, cfg):
        t = time.perf_counter()
        rep = run_puzzles(gen, task, puzzles, cfg, batch=25, progress=False)
        rep["seconds"] = time.perf_counter() - t
        return rep

    # The SC temperature, on validation problems only.
    val = problems(args.n_val, "val", 0, events=events)
    temps = [float(x) for x in args.temperatures.split(",") if x.strip()]
    sweep = {}
    val_greedy = run(val, StrategyConfig(method="cot"))["success_rate"]
    print(f"validation ({len(val)} problems, {'/'.join(map(str, events))} events): greedy CoT {val_greedy:.1%}",
          flush=True)
    for temp in temps:
        sweep[temp] = run(val, StrategyConfig(method="cot-sc", samples=args.val_k, sc_temperature=temp))["success_rate"]
        print(f"validation ({len(val)} problems): CoT-SC k={args.val_k} at T={temp}: {sweep[temp]:.1%}", flush=True)
    best = max(temps, key=lambda t: (sweep[t], -t))
    if args.n == 0:  # validation only (for choosing a recipe)
        if args.out:
            write_json(args.out, {"model": args.model, "seed": args.seed, "events": list(events),
                                  "val_greedy": val_greedy, "val_sweep": sweep, "val_k": args.val_k, "rows": []})
        return

    test = problems(args.n, "test", 0, events=events)
    rows = []
    methods = [("greedy CoT", StrategyConfig(method="cot"))]
    if not args.no_io:
        methods.insert(0, ("direct (IO, greedy)", StrategyConfig(method="io")))
    methods += [(f"CoT-SC k={k} (T={best})", StrategyConfig(method="cot-sc", samples=k, sc_temperature=best))
                for k in (int(x) for x in args.k.split(",") if x.strip())]
    print(f"{len(test)} held-out (test-split) arithmetic word problems, model {args.model}; SC temperature {best} "
          "(best on validation)")
    print("| method | accuracy | gain over greedy CoT | sampled | tokens per problem | seconds |\n|---|---|---|---|---|---|")
    greedy = None
    for label, cfg in methods:
        rep = run(test, cfg)
        oks = [r["ok"] for r in rep["results"]]
        if cfg.method == "cot":
            greedy = oks
        row = {"method": label, "config": rep["config"], "n": len(oks), "accuracy": rep["success_rate"],
               "se": _se(oks), "sampled": rep["sample_success_rate"], "tokens_per_problem": rep["tokens_per_puzzle"],
               "seconds": round(rep["seconds"], 1), "ok": oks}
        gain = ""
        if greedy is not None and cfg.method == "cot-sc":
            row["gain"], row["gain_se"] = row["accuracy"] - sum(greedy) / len(greedy), _paired_se(oks, greedy)
            gain = f"{100 * row['gain']:+.1f} +- {100 * row['gain_se']:.1f} points"
        rows.append(row)
        sampled = "" if row["sampled"] is None else f"{row['sampled']:.1%}"
        print(f"| {label} | {row['accuracy']:.1%} +- {100 * row['se']:.1f} | {gain} | {sampled} | "
              f"{row['tokens_per_problem']:.0f} | {row['seconds']:.0f} |", flush=True)
    if args.out:
        write_json(args.out, {"model": args.model, "seed": args.seed, "n": len(test), "events": list(events),
                              "val_greedy": val_greedy, "val_sweep": sweep,
                              "val_k": args.val_k, "sc_temperature": best, "rows": rows})


if __name__ == "__main__":
    main()
