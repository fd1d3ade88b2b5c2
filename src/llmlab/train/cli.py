"""``llmlab pretrain``: train a base model (a document completer) from text.

    llmlab pretrain --out runs/base                     # bundled corpus, CPU-speedrun configuration (180 s)
    llmlab pretrain --data corpus/ --val-data val.txt --out runs/base --preset depth-12 --max-steps 5000
    llmlab pretrain --out runs/base --resume            # continue from runs/base/checkpoints/last.pt
    torchrun --nproc_per_node=2 $(which llmlab) pretrain --out runs/base --max-steps 200

Flags left unset take the CPU-speedrun defaults (docs/LOG.md records how they were chosen); with no horizon
(--time-budget / --max-steps / --max-tokens) the run is time-boxed to 180 s of training.
"""

from __future__ import annotations

import argparse
import json

# The CPU speedrun's winning configuration (docs/LOG.md, "CPU speedrun"): the defaults of `llmlab pretrain`.
SPEEDRUN_DEFAULTS = dict(preset="cpu", vocab_size=2048, batch_size=4, grad_accum=1, seq_len=256, lr=6e-3,
                         optimizer="muon", muon_lr=0.02, time_budget=180.0, schedule="wsd", warmup_steps=20,
                         dtype="auto")


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The loop's flags, shared by every training stage (pretrain, sft, rm, dpo, ppo, grpo)."""
    g = p.add_argument_group("training loop")
    g.add_argument("--time-budget", type=float, help="seconds of training (the schedule decays on time)")
    g.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    g.add_argument("--max-tokens", type=int, help="stop after this many training tokens")
    g.add_argument("--batch-size", type=int, help="sequences per micro-batch per process")
    g.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    g.add_argument("--seq-len", type=int, help="tokens per training sequence (also the model's context)")
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--schedule", choices=["cosine", "wsd", "constant"], help="learning-rate schedule after warmup")
    g.add_argument("--warmup-steps", type=int, help="linear warmup steps")
    g.add_argument("--cooldown-frac", type=float, help="wsd: final fraction of the run spent decaying the lr")
    g.add_argument("--min-lr-frac", type=float, help="final learning rate as a fraction of the peak")
    g.add_argument("--weight-decay", type=float, help="decoupled weight decay on matrices")
    g.add_argument("--grad-clip", type=float, help="max gradient norm (0 = off)")
    g.add_argument("--optimizer", choices=["adamw", "muon"], help="adamw, or muon for hidden matrices + adamw")
    g.add_argument("--muon-lr", type=float, help="Muon learning rate (with --optimizer muon)")
    g.add_argument("--seed", type=int, help="random seed (weights, data order)")
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--dtype", choices=["auto", "fp32", "bf16"],
                   help="bf16 = autocast; auto = bf16 on GPU (pretrain and sft: also on CPUs with native bf16 "
                        "matmuls, AVX512-BF16/AMX), else fp32")
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    g.add_argument("--fsdp", action="store_true", default=None, help="FSDP2 instead of DDP under torchrun")
    g.add_argument("--threads", type=int, help="torch CPU threads (0 = default)")
    g.add_argument("--save-every", type=int, help="checkpoint every N steps (also on Ctrl-C / SIGTERM)")
    g.add_argument("--eval-every", type=int, help="evaluate every N steps (and at the end)")
    g.add_argument("--log-every", type=int, help="write metrics.jsonl every N steps")
    g.add_argument("--deterministic", action="store_true", default=None,
                   help="deterministic algorithms (bit-exact resume on the same machine)")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def train_config_from_args(args, defaults: dict | None = None):
    """A TrainConfig from the shared flags: explicit flags win, then ``defaults``, then TrainConfig's own.
    Giving any horizon flag drops the default time budget."""
    from llmlab.train.loop import TrainConfig

    defaults = dict(defaults or {})
    if any(getattr(args, k, None) is not None for k in ("max_steps", "max_tokens", "time_budget")):
        defaults.pop("time_budget", None)
    fields = set(TrainConfig.__dataclass_fields__)
    kw = {k: v for k, v in defaults.items() if k in fields}
    kw.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
    return TrainConfig(**kw)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain a base model on text (next-token prediction)",
                       description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="bundled", help="text/JSONL file, folder, or 'bundled' (the bundled train split)")
    p.add_argument("--val-data", default=None, help="validation text (default: the bundled val split with --data bundled)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--preset", default=None, help="model preset: tiny, cpu, gpt2-small, gpt2-medium, 1b, depth-N "
                   f"(default {SPEEDRUN_DEFAULTS['preset']})")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: train one, kept in OUT/tokenizer)")
    p.add_argument("--vocab-size", type=int, default=None,
                   help=f"vocabulary of a tokenizer trained here (default {SPEEDRUN_DEFAULTS['vocab_size']})")
    g = p.add_argument_group("model shape (override the preset)")
    for flag, what in (("--n-layer", "transformer blocks"), ("--d-model", "width"), ("--n-head", "attention heads"),
                       ("--n-kv-head", "key/value heads (grouped-query attention when fewer than --n-head)")):
        g.add_argument(flag, type=int, default=None, help=what)
    g.add_argument("--tie-embeddings", action=argparse.BooleanOptionalAction, default=None,
                   help="share the input embedding and the output head")
    p.add_argument("--sampling", choices=["random", "sequential"], default="random", help="training windows")
    p.add_argument("--eval-max-bytes", type=int, default=0, help="bytes of val text scored by periodic evals (0 = all)")
    p.add_argument("--samples", type=int, default=3, help="generated samples at the end")
    add_train_flags(p)
    p.set_defaults(func=_pretrain)


def _pretrain(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.train.pretrain import PretrainConfig, pretrain
    from llmlab.utils.dist import dist_info

    if args.tokenizer and args.vocab_size:
        from llmlab.tokenizer import Tokenizer

        if Tokenizer.load(args.tokenizer).vocab_size != args.vocab_size:
            raise LlmlabError(f"--vocab-size {args.vocab_size} disagrees with the tokenizer in {args.tokenizer}; "
                              "drop --vocab-size (the model takes the tokenizer's)")
    d = SPEEDRUN_DEFAULTS
    pcfg = PretrainConfig(data=args.data, val_data=args.val_data or "", out=args.out,
                          preset=args.preset or d["preset"], tokenizer=args.tokenizer or "",
                          vocab_size=args.vocab_size or d["vocab_size"], sampling=args.sampling,
                          eval_max_bytes=args.eval_max_bytes, samples=args.samples)
    tcfg = train_config_from_args(args, d)
    shape = {k: getattr(args, k) for k in ("n_layer", "d_model", "n_head", "n_kv_head", "tie_embeddings")
             if getattr(args, k) is not None}
    if "n_head" in shape and "n_kv_head" not in shape:
        shape["n_kv_head"] = shape["n_head"]
    result = pretrain(pcfg, tcfg, resume=args.resume, model_overrides=shape,
                      progress=False if args.no_progress else None)
    if result.interrupted:
        return 130
    if dist_info()[0] == 0:
        s = {k: v for k, v in result.summary.items() if k != "samples"}
        print(json.dumps(s))
    return 0
