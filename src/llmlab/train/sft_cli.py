"""``llmlab sft``: supervised fine-tuning of a base run on conversations (loss on the assistant's answers).

    llmlab sft --model runs/base --data bundled --out runs/sft             # generated default conversations
    llmlab sft --model runs/base --data chats.jsonl --out runs/sft --epochs 3 [--val-data val.jsonl]
    llmlab sft --model runs/base --data chats.jsonl --out runs/sft --skip-bad --no-packing
    llmlab sft --model runs/base --data bundled --out runs/sft --resume     # continue after Ctrl-C
    llmlab sft --model runs/base --safety-share 0.1 --out runs/sft         # + 10% safety conversations

The training-loop flags are pretraining's (``llmlab pretrain --help``). With no horizon flag the run makes
--epochs passes over the training conversations. Prints summary.json's numbers as one JSON line.
"""

from __future__ import annotations

import argparse
import json

from llmlab.train.cli import add_train_flags, train_config_from_args

# Defaults for fine-tuning a CPU-speedrun base (docs/LOG.md, "SFT on the bundled conversations"): the
# pretraining peak lr with a cosine decay; 1e-3 left the answers half-learned (val loss 2.60 vs 1.99 at 3e-3,
# same 83 steps), and 4 epochs beat 2 (1.69 vs 1.99) on 4,000 conversations; the bundled set is now 40,000, one pass.
SFT_DEFAULTS = dict(batch_size=16, lr=3e-3, schedule="cosine", warmup_steps=10, min_lr_frac=0.1, dtype="auto")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sft", help="supervised fine-tuning on conversations (base model -> assistant)",
                       description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="base run folder (from llmlab pretrain)")
    p.add_argument("--data", default="bundled",
                   help="JSONL of {'messages': [...]} or {'prompt', 'completion'} lines, or 'bundled'")
    p.add_argument("--val-data", default=None, help="held-out JSONL (default: the generator's held-out set, "
                   "or a seeded share of --data)")
    p.add_argument("--out", required=True, help="run folder for the fine-tuned model")
    p.add_argument("--packing", action=argparse.BooleanOptionalAction, default=True,
                   help="pack conversations into full rows (document-masked) instead of padding each")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed JSONL lines (and count them)")
    p.add_argument("--epochs", type=float, default=0.0,
                   help="passes over the data when no other horizon is set (0 = 4 over --data FILE, 1 over bundled)")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of --data held out without --val-data")
    p.add_argument("--n-train", type=int, default=40000,  # = SFTConfig.n_train (why: sft.py)
                   help="--data bundled: conversations generated for training")
    p.add_argument("--n-val", type=int, default=400, help="--data bundled: held-out conversations")
    p.add_argument("--synth-seed", type=int, default=0, help="--data bundled: generator seed")
    p.add_argument("--safety-share", type=float, default=0.0,
                   help="--data bundled: add this share of safety conversations (refusals, injections ignored, "
                   "benign look-alikes; llmlab redteam-data) to the generated ones")
    p.add_argument("--eval-samples", type=int, default=200,
                   help="held-out conversations generated at the end for format rate / exact match (0 = off)")
    add_train_flags(p)
    p.set_defaults(func=_sft)


def _sft(args) -> int:
    from llmlab.model.checkpoint import load_model_config
    from llmlab.train.loop import dist_info
    from llmlab.train.sft import SFTConfig, sft

    defaults = dict(SFT_DEFAULTS)
    # The context is the base model's unless --seq-len asks for less.
    defaults["seq_len"] = load_model_config(args.model).max_seq_len
    tcfg = train_config_from_args(args, defaults)
    scfg = SFTConfig(model=args.model, data=args.data, val_data=args.val_data or "", out=args.out,
                     packing=args.packing, skip_bad=args.skip_bad, epochs=args.epochs, val_fraction=args.val_fraction,
                     n_train=args.n_train, n_val=args.n_val, synth_seed=args.synth_seed,
                     safety_share=args.safety_share, eval_samples=args.eval_samples)
    result = sft(scfg, tcfg, resume=args.resume, progress=False if args.no_progress else None)
    if result.interrupted:
        return 130
    if dist_info()[0] == 0:
        print(json.dumps(result.summary))
    return 0
