"""``llmlab reason``: System 2 on checkable tasks -- direct answers, chain of thought, self-consistency and Tree
of Thoughts -- with our model or any OpenAI-compatible endpoint.

    llmlab reason --model runs/game24 --task game24 --method tot --breadth 5 --puzzles puzzles.txt
    llmlab reason --model runs/game24 --task game24 --method cot-sc --samples 10 --puzzles game24.csv --ranks 901-1000 --json
    llmlab reason --endpoint http://127.0.0.1:8000/v1 --endpoint-model NAME --task game24 --method cot --puzzles p.txt
    llmlab reason check --task game24 --puzzle "4 9 10 13" --answer "(10-4)*(13-9)"     # exit 0 valid, 1 not
    llmlab reason train --task game24 --out runs/game24                                  # SFT + GRPO, CPU minutes
    llmlab reason train --task arith --out runs/arith --grpo-steps 0                     # arithmetic word problems
    llmlab reason --model runs/arith --task arith --method cot-sc --samples 10 --puzzles runs/arith/data/test.txt

The run prints the success rate (progress bar on stderr), writes ``OUT/report.json`` and, for Tree of
Thoughts, one JSON tree per puzzle under ``OUT/trees/`` plus a PNG of the first. ``--json`` prints the report
(``success_rate``, ``tokens_per_puzzle``, per-puzzle ``results``) instead of the summary line.
"""

from __future__ import annotations

import argparse
import json
import sys


def _ranks(text: str) -> tuple[int, int]:
    a, _, b = text.partition("-")
    try:
        lo, hi = int(a), int(b or a)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rank range such as 901-1000, got {text!r}") from None
    return lo, hi


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 3,4, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.4,0.3,0.3,0, got {text!r}") \
            from None


def register(sub: argparse._SubParsersAction) -> None:
    from llmlab.reason.strategies import METHODS, SEARCHES, StrategyConfig
    from llmlab.reason.tasks import TASKS

    d = StrategyConfig()
    p = sub.add_parser("reason", help="System 2: chain of thought, self-consistency, Tree of Thoughts "
                       "(Game of 24, arithmetic)",
                       description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_argument_group("generator (one of)")
    src.add_argument("--model", metavar="RUN", help="run folder of our model")
    src.add_argument("--endpoint", metavar="URL", help="an OpenAI-compatible server (http://host:port or .../v1)")
    src.add_argument("--endpoint-model", default="default", help="the model name to ask the endpoint for")
    src.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    src.add_argument("--retries", type=int, default=3, help="endpoint: retries of a failed request (with backoff)")
    src.add_argument("--device", default="cpu", help="--model: cpu, cuda, ...")
    src.add_argument("--seed", type=int, default=0, help="--model: sampling seed")
    p.add_argument("--task", default="game24", choices=list(TASKS), help="the task (arith: io, cot, cot-sc)")
    p.add_argument("--method", choices=METHODS, default=None, help="io, cot, cot-sc or tot (required to run)")
    p.add_argument("--search", choices=SEARCHES, default=d.search, help="tot: breadth-first or depth-first")
    p.add_argument("--breadth", type=int, default=d.breadth, help="tot bfs: states kept per level")
    p.add_argument("--samples", type=int, default=d.samples, help="cot-sc: chains of thought per puzzle")
    p.add_argument("--n-evaluate", type=int, default=d.n_evaluate, help="tot: value samples per state")
    p.add_argument("--propose-samples", type=int, default=d.propose_samples,
                   help="tot: propose replies sampled per node (their distinct thoughts are its children)")
    p.add_argument("--temperature", type=float, default=d.temperature, help="io/cot sampling temperature (0 = greedy)")
    p.add_argument("--sc-temperature", type=float, default=d.sc_temperature, help="cot-sc sampling temperature")
    p.add_argument("--value-temperature", type=float, default=d.value_temperature,
                   help="tot: temperature of the value samples (0 = one greedy judgement)")
    p.add_argument("--judge-temperature", type=float, default=None,
                   help="tot: temperature of the judge of final answers (default: --value-temperature; 0 = greedy)")
    p.add_argument("--no-judge", action="store_true", help="tot: rank final answers by their path, not a judgement")
    p.add_argument("--puzzles", metavar="FILE", help="one puzzle a line, or the paper's CSV")
    p.add_argument("--ranks", type=_ranks, default=None, metavar="A-B", help="CSV: only these ranks (e.g. 901-1000)")
    p.add_argument("--limit", type=int, default=0, help="only the first N puzzles (0 = all)")
    p.add_argument("--batch", type=int, default=10, help="puzzles solved as one batch (lockstep for tot bfs)")
    p.add_argument("--out", default=None, help="report and trees folder (default runs/reason/TASK-METHOD)")
    p.add_argument("--draw", type=int, default=1, help="tot: draw this many trees as PNG")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

    rsub = p.add_subparsers(dest="reason_command", metavar="{check,train}")
    c = rsub.add_parser("check", help="is an answer a valid solution? exit 0 if so, 1 with the reason if not")
    c.add_argument("--task", default="game24", choices=list(TASKS), help="the task (arith: io, cot, cot-sc)")
    c.add_argument("--puzzle", required=True, help='the puzzle, e.g. "4 9 10 13" (arith: the problem text)')
    c.add_argument("--answer", required=True, help='the answer, e.g. "(10-4)*(13-9)"')
    c.set_defaults(func=_check)

    from llmlab.reason.train import Game24TrainConfig
    from llmlab.tasks.arith_word import ArithDataConfig

    t = Game24TrainConfig()
    tr = rsub.add_parser("train", help="teach a small model the task: SFT on solver-made solutions, then GRPO",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tr.add_argument("--task", default="game24", choices=list(TASKS), help="the task (arith: io, cot, cot-sc)")
    tr.add_argument("--out", required=True, help="run folder for the trained model (stages in subfolders)")
    tr.add_argument("--sft-steps", type=int, default=t.sft_steps, help="SFT optimizer steps")
    tr.add_argument("--sft-seconds", type=float, default=t.sft_seconds, help="cap on SFT training seconds (0 = none)")
    tr.add_argument("--grpo-steps", type=int, default=t.grpo_steps, help="GRPO steps (0 = skip GRPO)")
    tr.add_argument("--grpo-seconds", type=float, default=t.grpo_seconds, help="cap on GRPO seconds (0 = none)")
    tr.add_argument("--sft-lr", type=float, default=t.sft_lr, help="SFT peak learning rate")
    tr.add_argument("--grpo-lr", type=float, default=t.grpo_lr, help="GRPO peak learning rate")
    tr.add_argument("--layers", type=int, default=t.n_layer, help="transformer blocks")
    tr.add_argument("--width", type=int, default=t.d_model, help="model width (d_model)")
    tr.add_argument("--vocab-size", type=int, default=t.vocab_size, help="tokenizer vocabulary")
    tr.add_argument("--split-digits", action="store_true", help="tokenizer: every digit its own token")
    a = ArithDataConfig()
    tr.add_argument("--events", type=_ints, default=a.events, metavar="N,M",
                    help="arith: events per problem, each count equally likely (training and held-out problems)")
    tr.add_argument("--order-shares", type=_floats, default=a.order_shares, metavar="S,G,T,X",
                    help="arith: shares of the solution orders story, gains, totals, shuffled")
    tr.add_argument("--swap-share", type=float, default=a.swap_share,
                    help="arith: share of + and * lines written with their operands swapped")
    tr.add_argument("--seed", type=int, default=t.seed, help="random seed (data, weights)")
    tr.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads (0 = default)")
    tr.add_argument("--eval-puzzles", type=int, default=t.eval_puzzles,
                    help="validation puzzles scored with greedy CoT after each stage (0 = off)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    tr.set_defaults(func=_train)


def _run(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.reason.runner import read_puzzles, run_puzzles, summary_line
    from llmlab.reason.strategies import StrategyConfig
    from llmlab.reason.tasks import get_task
    from llmlab.utils.io import write_json

    if args.method is None or not args.puzzles:
        raise LlmlabError("llmlab reason needs --method and --puzzles (or a subcommand: check, train)")
    if bool(args.model) == bool(args.endpoint):
        raise LlmlabError("give exactly one of --model RUN and --endpoint URL")
    cfg = StrategyConfig(method=args.method, temperature=args.temperature, samples=args.samples,
                         sc_temperature=args.sc_temperature, search=args.search, breadth=args.breadth,
                         n_evaluate=args.n_evaluate, propose_samples=args.propose_samples,
                         value_temperature=args.value_temperature, judge_temperature=args.judge_temperature,
                         judge=not args.no_judge)
    cfg.validate()
    task = get_task(args.task)
    puzzles, skipped = read_puzzles(task, args.puzzles, args.ranks)
    for line in skipped[:5]:
        print(f"llmlab reason: skipped {line}", file=sys.stderr)
    if len(skipped) > 5:
        print(f"llmlab reason: ... and {len(skipped) - 5} more skipped lines", file=sys.stderr)
    if args.limit:
        puzzles = puzzles[: args.limit]
    if not puzzles:
        raise LlmlabError(f"{args.puzzles}: no valid puzzles ({len(skipped)} line(s) skipped)")
    gen = _generator(args)
    out = args.out or f"runs/reason/{args.task}-{cfg.label.replace('(', '-').replace(')', '').replace('=', '')}"
    from pathlib import Path

    report = run_puzzles(gen, task, puzzles, cfg, batch=args.batch, trees_dir=Path(out) / "trees",
                         draw=args.draw, progress=False if args.no_progress else None)
    report["skipped"] = len(skipped)
    report["skipped_lines"] = skipped
    write_json(Path(out) / "report.json", report)
    print(json.dumps(report) if args.json else summary_line(report, len(skipped)))
    return 0


def _generator(args):
    import os

    if args.model:
        from llmlab.reason.generators import EngineGenerator

        return EngineGenerator.from_run(args.model, device=args.device, seed=args.seed)
    from llmlab.reason.generators import OpenAIGenerator

    return OpenAIGenerator(args.endpoint, args.endpoint_model, api_key=os.environ.get(args.api_key_env, ""),
                           retries=args.retries)


def _train(args) -> int:
    from dataclasses import replace

    from llmlab.reason.train import Game24TrainConfig, train_game24

    cfg = Game24TrainConfig(out=args.out, task=args.task, sft_steps=args.sft_steps, sft_seconds=args.sft_seconds,
                            grpo_steps=args.grpo_steps, grpo_seconds=args.grpo_seconds,
                            sft_lr=args.sft_lr, grpo_lr=args.grpo_lr, n_layer=args.layers, d_model=args.width,
                            vocab_size=args.vocab_size, split_digits=args.split_digits, seed=args.seed,
                            threads=args.threads,
                            eval_puzzles=args.eval_puzzles)
    cfg = replace(cfg, data=replace(cfg.data, seed=args.seed),
                  arith=replace(cfg.arith, events=args.events, order_shares=args.order_shares,
                                swap_share=args.swap_share))
    summary = train_game24(cfg, progress=False if args.no_progress else None)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))
    return 0


def _check(args) -> int:
    from llmlab.reason.tasks import get_task

    task = get_task(args.task)
    verdict = task.check(task.parse_puzzle(args.puzzle), args.answer)
    if verdict.ok:
        print(f"valid: {task.describe(task.parse_puzzle(args.puzzle), args.answer)}")
        return 0
    print(f"invalid: {verdict.reason}")
    return 1
