"""``llmlab eval``: evaluations of a trained run folder.

    llmlab eval bpb --model RUN --text FILE      # {"bpb": ..., "bytes": ..., "tokens": ...}
    llmlab eval bpb --model RUN --text bundled:val
    llmlab eval chat --model RUN [--base BASE]    # format rate, exact match (llmlab.chat.cli)
    llmlab eval rm | winrate | exact ...          # preference evaluations (llmlab.train.rl_cli)
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
    # The other evaluations are defined beside the stages they judge.
    from llmlab.chat.cli import add_eval_commands as add_chat_evals
    from llmlab.train.rl_cli import add_eval_commands as add_rl_evals

    add_chat_evals(esub)
    add_rl_evals(esub)


def _bpb(args) -> int:
    from llmlab.eval.bpb import bits_per_byte
    from llmlab.model.checkpoint import load_run
    from llmlab.train.data import iter_documents

    model, tok = load_run(args.model, device=args.device)
    texts = list(iter_documents(args.text))
    r = bits_per_byte(model, tok, texts, context=args.context, batch_size=args.batch_size)
    print(json.dumps({"bpb": round(r["bpb"], 6), "bytes": r["bytes"], "tokens": r["tokens"], "loss": round(r["loss"], 6)}))
    return 0
