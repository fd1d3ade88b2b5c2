"""``llmlab eval``: evaluations of a trained run folder.

    llmlab eval bpb --model RUN --text FILE      # {"bpb": ..., "bytes": ..., "tokens": ...}
    llmlab eval bpb --model RUN --text bundled:val
    llmlab eval chat --model RUN [--base BASE]    # format rate and exact match on held-out conversations
    llmlab eval rm --reward-model RUN --pairs FILE
    llmlab eval winrate --model RUN --baseline SFT --judge RM --prompts FILE
    llmlab eval exact --model RUN --prompts FILE  # exact match on verifiable tasks
    llmlab eval suite --model RUN [--tasks a,b,FILE.jsonl] [--json]          # the task suite; RUN/eval/suite.json
    llmlab eval suite --endpoint URL --model NAME --api-key K --out DIR      # ... on an OpenAI-compatible server
    llmlab eval tasks --out DIR [--lm-eval]       # the built-in tasks as JSONL task files (and lm-eval YAML)
    llmlab eval validate FILE...                  # check task files: file:line: field 'x': ...
    llmlab eval lm-eval --model RUN --tasks T --include-path DIR   # lm-evaluation-harness on our model

Every evaluation prints JSON; the library functions are ``eval/bpb.py``, ``eval/chat_eval.py``,
``eval/rl_eval.py``, ``eval/suite.py`` and ``eval/lmeval.py``.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained model", description="Evaluate a trained model.")
    esub = p.add_subparsers(dest="eval_command", metavar="<evaluation>", required=True)
    q = esub.add_parser("bpb", help="bits per byte of a text (tokenizer-independent)",
                        description="Bits per byte of a text: consecutive non-overlapping context-length windows, "
                        "each starting with <|bos|>; total nats / ln 2 / UTF-8 bytes.")
    q.add_argument("--model", required=True, help="run folder (model.safetensors, model_config.json, tokenizer/)")
    q.add_argument("--text", required=True, help="text/JSONL file or folder, or bundled:val / bundled:train")
    q.add_argument("--context", type=int, default=None, help="window length (default: the model's context)")
    q.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.set_defaults(func=_bpb)
    _add_chat_eval(esub)
    _add_preference_evals(esub)
    _add_suite(esub)


def _print(result: dict) -> int:
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _bpb(args) -> int:
    from llmlab.data.ingest import iter_texts
    from llmlab.eval.bpb import bits_per_byte
    from llmlab.runs import load_run

    model, tok = load_run(args.model, device=args.device)
    texts = list(iter_texts(args.text))
    r = bits_per_byte(model, tok, texts, context=args.context, batch_size=args.batch_size)
    print(json.dumps({"bpb": round(r["bpb"], 6), "bytes": r["bytes"], "tokens": r["tokens"], "loss": round(r["loss"], 6)}))
    return 0


def _add_chat_eval(esub: argparse._SubParsersAction) -> None:
    q = esub.add_parser("chat", help="format rate and exact match on held-out conversations (base vs SFT)",
                        description="Generate greedy answers to held-out conversations and report the format rate "
                        "(answers that end their turn) and exact match on checkable questions, for the model and "
                        "optionally its base (few-shot). Prints JSON.")
    q.add_argument("--model", required=True, help="chat run folder (from llmlab sft)")
    q.add_argument("--base", default=None, help="base run folder to compare with")
    q.add_argument("--data", default="bundled", help="held-out JSONL, or 'bundled' (the generator's held-out set)")
    q.add_argument("-n", "--n", type=int, default=200, help="held-out conversations to use")
    q.add_argument("--max-new-tokens", type=int, default=64, help="answer length limit")
    q.add_argument("--samples", action="store_true", help="include sample answers in the JSON")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.set_defaults(func=_eval_chat)


def _add_preference_evals(esub: argparse._SubParsersAction) -> None:
    q = esub.add_parser("rm", help="pairwise accuracy of a reward model on preference pairs",
                        description="Pairwise accuracy (share of pairs scored chosen > rejected). Prints JSON.")
    q.add_argument("--reward-model", required=True, help="run folder from llmlab rm")
    q.add_argument("--pairs", required=True, help="preference pairs JSONL")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.set_defaults(func=_eval_rm)
    q = esub.add_parser("winrate", help="win rate of a tuned model over a baseline, judged by a reward model",
                        description="Both models answer held-out prompts; the judge scores each; wins (ties = 1/2) "
                        "and the KL from the model to the baseline. Prints JSON.")
    q.add_argument("--model", required=True, help="tuned run folder")
    q.add_argument("--baseline", required=True, help="baseline run folder (the SFT model)")
    q.add_argument("--judge", required=True, help="reward-model run folder")
    q.add_argument("--prompts", required=True, help="held-out prompts JSONL")
    q.add_argument("-n", "--n", type=int, default=None, help="use the first N prompts")
    q.add_argument("--temperature", type=float, default=0.0, help="answer sampling temperature (0 = greedy)")
    q.add_argument("--max-new-tokens", type=int, default=64, help="answer length limit")
    q.add_argument("--samples", type=int, default=0, help="include this many sample answers in the JSON")
    q.add_argument("--seed", type=int, default=0, help="sampling seed")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.set_defaults(func=_eval_winrate)
    q = esub.add_parser("exact", help="exact match on verifiable tasks (greedy)",
                        description="Greedy answers to {prompt, answer} tasks, strict exact match. Prints JSON.")
    q.add_argument("--model", required=True, help="run folder")
    q.add_argument("--prompts", required=True, help="tasks JSONL {prompt, answer}")
    q.add_argument("-n", "--n", type=int, default=None, help="use the first N tasks")
    q.add_argument("--max-new-tokens", type=int, default=64, help="answer length limit")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.set_defaults(func=_eval_exact)


def _eval_chat(args) -> int:
    from llmlab.eval.chat_eval import chat_report

    rep = chat_report(args.model, base_run=args.base, n=args.n, data=args.data, max_new_tokens=args.max_new_tokens,
                      device=args.device)
    if not args.samples:
        for key in ("sft", "base"):
            if key in rep:
                rep[key] = {k: v for k, v in rep[key].items() if k != "samples"}
    print(json.dumps(rep, indent=1))
    return 0


def _eval_rm(args) -> int:
    from llmlab.eval.rl_eval import rm_accuracy

    return _print(rm_accuracy(args.reward_model, args.pairs, device=args.device))


def _eval_winrate(args) -> int:
    from llmlab.eval.rl_eval import win_rate

    return _print(win_rate(args.model, args.baseline, args.judge, args.prompts, n=args.n,
                           temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed,
                           device=args.device, samples=args.samples))


def _eval_exact(args) -> int:
    from llmlab.eval.rl_eval import exact_match

    return _print(exact_match(args.model, args.prompts, n=args.n, max_new_tokens=args.max_new_tokens,
                              device=args.device))


# ----------------------------------------------------------------------------------------------------------
# The task suite (eval/suite.py), task files (eval/taskfile.py), lm-evaluation-harness (eval/lmeval.py)


def _add_suite(esub: argparse._SubParsersAction) -> None:
    from llmlab.eval.suites import BUILTIN_TASKS

    q = esub.add_parser("suite", help="the evaluation suite: scores with 95%% intervals and a chance-centred aggregate",
                        description="Score a run (or an OpenAI-compatible endpoint) on task suites: built-in "
                        f"({', '.join(BUILTIN_TASKS)}) and JSONL task files. Prints per-task scores with 95% "
                        "intervals and the chance-centred aggregate (CORE); writes OUT/suite.json and, item by item, "
                        "OUT/suite.items.jsonl (a rerun resumes from it).")
    q.add_argument("--model", default=None, help="run folder; with --endpoint, the model name the server knows "
                   "(default: its first model)")
    q.add_argument("--tasks", default=",".join(BUILTIN_TASKS),
                   help="comma-separated built-in task names and task files (.jsonl) or folders of them")
    q.add_argument("-n", "--n", type=int, default=0, help="items per built-in task (0 = each task's default)")
    q.add_argument("--seed", type=int, default=0, help="seed of the built-in task generators")
    q.add_argument("--prompt-style", choices=("auto", "chat", "text"), default="auto",
                   help="how question-answer tasks are posed: chat template or few-shot text (auto: chat for a "
                   "chat-tuned run or an endpoint)")
    q.add_argument("--out", default=None, help="results folder (default: RUN/eval)")
    q.add_argument("--fresh", action="store_true", help="ignore saved partial results and score every item again")
    q.add_argument("--batch-size", type=int, default=64, help="continuations scored per forward pass")
    q.add_argument("--endpoint", default=None, help="an OpenAI-compatible API base, e.g. http://127.0.0.1:8000/v1")
    q.add_argument("--api-key", default=None, help="the endpoint's API key (default: $OPENAI_API_KEY)")
    q.add_argument("--retries", type=int, default=4, help="endpoint: retries of a failed request (backoff doubles)")
    q.add_argument("--workers", type=int, default=4, help="endpoint: requests in flight")
    q.add_argument("--timeout", type=float, default=120.0, help="endpoint: seconds per request")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.add_argument("--json", action="store_true", help="print the results as JSON")
    q.set_defaults(func=_eval_suite)

    q = esub.add_parser("tasks", help="write the built-in tasks as JSONL task files",
                        description="Write built-in tasks as JSONL task files (the format `llmlab eval suite` reads; "
                        "see eval/taskfile.py), and with --lm-eval also as lm-evaluation-harness tasks.")
    q.add_argument("--out", required=True, help="folder for the task files")
    q.add_argument("--tasks", default=",".join(BUILTIN_TASKS), help="comma-separated built-in task names")
    q.add_argument("-n", "--n", type=int, default=0, help="items per task (0 = each task's default)")
    q.add_argument("--seed", type=int, default=0, help="generator seed")
    q.add_argument("--lm-eval", action="store_true", help="also write OUT/lm_eval/<task>.yaml + data for lm-eval")
    q.set_defaults(func=_eval_tasks)

    q = esub.add_parser("validate", help="check task files (file:line: field: problem)",
                        description="Check JSONL task files; prints every problem as file:line: field 'x': ... "
                        "and exits with status 2 if there is any.")
    q.add_argument("files", nargs="+", help="task files")
    q.add_argument("--json", action="store_true", help="print {file: [problems]} as JSON")
    q.set_defaults(func=_eval_validate)

    q = esub.add_parser("lm-eval", help="run lm-evaluation-harness tasks on a run (needs the lmeval extra)",
                        description="Run lm-evaluation-harness on a run folder through llmlab's model adapter "
                        "(loglikelihood, loglikelihood_rolling, generate_until). Prints lm-eval's results as JSON.")
    q.add_argument("--model", required=True, help="run folder")
    q.add_argument("--tasks", required=True, help="comma-separated lm-eval task names")
    q.add_argument("--include-path", default=None, help="folder of extra lm-eval task YAMLs (e.g. from "
                   "`llmlab eval tasks --lm-eval`); with it, lm-eval's own task index is not loaded")
    q.add_argument("--limit", type=int, default=None, help="items per task")
    q.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples (lm-eval's setting)")
    q.add_argument("--batch-size", type=int, default=64, help="continuations scored per forward pass")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.set_defaults(func=_eval_lm_eval)


def _suite_table(res: dict) -> str:
    rows = [f"{'task':<16} {'score':>7}  {'95% interval':<17} {'chance':>6}  {'n':>5}  errors"]
    for name, t in res["tasks"].items():
        ci = t.get("ci")
        ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        sc = "n/a" if t["score"] is None else f"{t['score']:.3f}"
        ch = "-" if t.get("chance") is None else f"{t['chance']:.2f}"
        rows.append(f"{name:<16} {sc:>7}  {ci_s:<17} {ch:>6}  {t['n']:>5}  {t['errors']}  ({t['metric']})")
    a = res["aggregate"]
    if a.get("score") is not None:
        rows.append(f"{'aggregate':<16} {a['score']:>7.3f}  [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]  (chance-centred mean "
                    f"over {len(a['tasks'])} tasks)")
    return "\n".join(rows)


def _eval_suite(args) -> int:
    import os

    from llmlab.errors import LlmlabError
    from llmlab.eval.suite import SuiteConfig, evaluate_endpoint, evaluate_run

    cfg = SuiteConfig(tasks=args.tasks, n=args.n, seed=args.seed, prompt_style=args.prompt_style, fresh=args.fresh)
    if args.endpoint:
        from pathlib import Path

        out = args.out
        if out is None and args.model and Path(args.model).is_dir():
            out = str(Path(args.model) / "eval")
        if out is None:
            raise LlmlabError("--endpoint needs --out DIR for its results (or --model RUN_FOLDER)")
        name = None if args.model and Path(args.model).is_dir() else args.model
        res = evaluate_endpoint(args.endpoint, name, cfg, out_dir=out, api_key=args.api_key or os.environ.get("OPENAI_API_KEY"),
                                retries=args.retries, workers=args.workers, timeout=args.timeout)
    else:
        if not args.model:
            raise LlmlabError("--model RUN is required (or --endpoint URL)")
        res = evaluate_run(args.model, cfg, out_dir=args.out, device=args.device, batch_rows=args.batch_size)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(_suite_table(res))
    return 0


def _eval_tasks(args) -> int:
    from pathlib import Path

    from llmlab.eval.suite import resolve_tasks
    from llmlab.eval.taskfile import write_task

    out = Path(args.out)
    written = []
    for task in resolve_tasks([t for t in args.tasks.split(",") if t], args.n, args.seed):
        written.append(str(write_task(out / f"{task.name}.jsonl", task)))
        if args.lm_eval:
            from llmlab.eval.lmeval import write_lmeval_task

            written.append(str(write_lmeval_task(task, out / "lm_eval")))
    return _print({"written": written})


def _eval_validate(args) -> int:
    import sys

    from llmlab.errors import LlmlabError
    from llmlab.eval.taskfile import validate_task_file

    problems = {}
    for f in args.files:
        try:
            problems[f] = validate_task_file(f)
        except LlmlabError as e:
            problems[f] = [str(e)]
    if args.json:
        print(json.dumps(problems, indent=1))
    else:
        for f, ps in problems.items():
            if ps:
                for p in ps:
                    print(p, file=sys.stderr)
            else:
                print(f"{f}: ok")
    return 2 if any(problems.values()) else 0


def _eval_lm_eval(args) -> int:
    from llmlab.eval.backends import LocalBackend
    from llmlab.eval.lmeval import make_lm, run_lm_eval

    lm = make_lm(LocalBackend.from_run(args.model, device=args.device, batch_rows=args.batch_size))
    res = run_lm_eval(lm, [t for t in args.tasks.split(",") if t], include_path=args.include_path, limit=args.limit,
                      num_fewshot=args.num_fewshot)
    print(json.dumps(res, indent=1, default=float))
    return 0
