"""``llmlab eval``: evaluations of a trained run folder.

    llmlab eval bpb --model RUN --text FILE      # {"bpb": ..., "bytes": ..., "tokens": ...}
    llmlab eval bpb --model RUN --text bundled:val
    llmlab eval chat --model RUN [--base BASE]    # format rate and exact match on held-out conversations
    llmlab eval rm --reward-model RUN --pairs FILE
    llmlab eval winrate --model RUN --baseline SFT --judge RM --prompts FILE
    llmlab eval exact --model RUN --prompts FILE  # exact match on verifiable tasks
    llmlab eval tools --model RUN --out DIR       # arithmetic with/without the calculator; QA with/without retrieval

Every evaluation prints JSON; the library functions are ``eval/bpb.py``, ``eval/chat_eval.py`` and
``eval/rl_eval.py`` and ``eval/tools_eval.py``.
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
    _add_tools_eval(esub)


def _add_tools_eval(esub: argparse._SubParsersAction) -> None:
    q = esub.add_parser("tools", help="tool use: arithmetic with/without the calculator, document QA with/without "
                        "retrieval (recall@5, citations, I-don't-know rate)",
                        description="Held-out 2-3 digit arithmetic answered with and without the calculator, and "
                        "questions about freshly generated documents (made-up facts) answered with and without the "
                        "search tool. Writes OUT/tools.json (and the documents and their index under OUT); prints it.")
    q.add_argument("--model", required=True, help="run folder")
    q.add_argument("--out", required=True, help="folder for the documents, their index and tools.json")
    q.add_argument("--n-calc", type=int, default=300, help="arithmetic questions")
    q.add_argument("--n-qa", type=int, default=300, help="document questions (a quarter unanswerable)")
    q.add_argument("--entities", type=int, default=90, help="made-up towns, companies and people in the documents")
    q.add_argument("--seed", type=int, default=0, help="which documents and questions")
    q.add_argument("--samples", action="store_true", help="include sample answers in the JSON")
    q.add_argument("--device", default="cpu", help="cpu | cuda")
    q.set_defaults(func=_eval_tools)


def _eval_tools(args) -> int:
    from llmlab.eval.tools_eval import tools_report

    rep = tools_report(args.model, args.out, n_calc=args.n_calc, n_entities=args.entities, n_qa=args.n_qa,
                       seed=args.seed, device=args.device)
    if not args.samples:
        for key in ("arithmetic", "grounded"):
            rep[key] = {k: v for k, v in rep[key].items() if k != "samples"}
    print(json.dumps(rep, indent=1))
    return 0


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
