"""``llmlab scaling sweep|fit|predict``: wiring only; the work is in ``sweep.py``, ``fit.py`` and ``predict.py``.

    llmlab scaling sweep --out runs/scaling [--preset cpu|gpu] [--depths 1,2,3,4] [--budgets 5e11,1.5e12] [--dry-run]
    llmlab scaling fit --csv runs/scaling/sweep.csv [--json] [--plot fit.png]
    llmlab scaling predict --out runs/scaling --budget 1.35e13 [--depth N] [--no-run] [--json]
"""

from __future__ import annotations

import argparse
import json


def _numbers(kind):
    def parse(text: str):
        try:
            vals = tuple(kind(float(v)) if kind is int else kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers") from None
        if not vals:
            raise argparse.ArgumentTypeError("expected at least one number")
        return vals

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scaling", help="scaling laws: sweep sizes x budgets, fit L(N, D), predict a bigger run",
                       description="Scaling laws: a sweep of model sizes x compute budgets, Chinchilla-style fits, "
                                   "and a prediction checked by a real run.")
    ssub = p.add_subparsers(dest="scaling_command", metavar="<command>", required=True)

    q = ssub.add_parser("sweep", help="train every (budget, depth) run to its budget; results in OUT/sweep.csv",
                        description="Train depth-N models at several compute budgets (resumable). Under torchrun "
                                    "every run uses all processes.")
    q.add_argument("--out", required=True, help="sweep folder (runs/, sweep.csv, sweep.json, tokenizer/, val.txt)")
    q.add_argument("--preset", default="cpu", help="cpu (~1 h on 2 cores, bundled corpus) or gpu (torchrun, --data)")
    q.add_argument("--depths", type=_numbers(int), help="model sizes, e.g. 1,2,3,4 (the depth-N dial)")
    q.add_argument("--budgets", type=_numbers(float), help="training FLOPs per run, e.g. 5e11,1.5e12,4.5e12")
    q.add_argument("--aspect", type=int, help="d_model = aspect * depth")
    q.add_argument("--head-dim", type=int, help="attention head width")
    q.add_argument("--data", help="training text (file, folder, or 'bundled')")
    q.add_argument("--val-data", help="validation text (default: the bundled val split with bundled data)")
    q.add_argument("--val-bytes", type=int, help="score every run on this many bytes of validation text (0 = all)")
    q.add_argument("--vocab-size", type=int, help="vocabulary of the tokenizer trained for the sweep")
    q.add_argument("--tokenizer", help="an existing tokenizer folder instead of training one")
    q.add_argument("--seq-len", type=int, help="training context")
    q.add_argument("--batch-size", type=int, help="sequences per micro-batch per process")
    q.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    q.add_argument("--lr", type=float, help="peak learning rate (AdamW groups)")
    q.add_argument("--muon-lr", type=float, help="Muon learning rate")
    q.add_argument("--device", help="auto | cpu | cuda")
    q.add_argument("--threads", type=int, help="torch CPU threads (0 = default)")
    q.add_argument("--dry-run", action="store_true", help="print the plan (tokens per run) and stop")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=_sweep)

    q = ssub.add_parser("fit", help="fit IsoFLOP parabolas and L(N, D) = E + A/N^a + B/D^b to a CSV of runs",
                        description="Fit Chinchilla's approaches 2 and 3 to a CSV with columns params, tokens, "
                                    "val_bpb (and optionally budget or flops).")
    q.add_argument("--csv", required=True, help="one row per run: params, tokens, val_bpb (others allowed)")
    q.add_argument("--json", action="store_true", help="print the fits as JSON")
    q.add_argument("--plot", default=None, help="PNG of the fits (default: next to the CSV, NAME_fit.png)")
    q.set_defaults(func=_fit)

    q = ssub.add_parser("predict", help="predict a bigger run's val_bpb from a sweep, then run it and compare",
                        description="Fit the sweep in OUT, predict the validation bits per byte of a run at "
                                    "--budget FLOPs, write OUT/prediction.json, train it and report the error.")
    q.add_argument("--out", required=True, help="the sweep folder")
    q.add_argument("--budget", type=float, required=True, help="training FLOPs of the predicted run")
    q.add_argument("--depth", type=int, default=None, help="model depth (default: nearest the IsoFLOP N_opt)")
    q.add_argument("--no-run", action="store_true", help="only predict")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_predict)


def _sweep(args) -> int:
    from llmlab.scaling.sweep import SweepConfig, run_sweep

    cfg = SweepConfig.from_preset(args.preset, out=args.out, depths=args.depths, budgets=args.budgets,
                             aspect=args.aspect, head_dim=args.head_dim, data=args.data, val_data=args.val_data,
                             val_bytes=args.val_bytes, vocab_size=args.vocab_size, tokenizer=args.tokenizer,
                             seq_len=args.seq_len, batch_size=args.batch_size, grad_accum=args.grad_accum,
                             lr=args.lr, muon_lr=args.muon_lr, device=args.device, threads=args.threads)
    from llmlab.utils.dist import dist_info

    path = run_sweep(cfg, dry_run=args.dry_run, progress=False if args.no_progress else None)
    if not args.dry_run and dist_info()[0] == 0:
        print(path)
    return 0


def _fit(args) -> int:
    from pathlib import Path

    from llmlab.scaling.fit import fit_csv, format_fit

    plot = args.plot if args.plot is not None else str(Path(args.csv).with_suffix("")) + "_fit.png"
    result = fit_csv(args.csv, plot=plot or None)
    print(json.dumps(result, indent=2) if args.json else format_fit(result))
    return 0


def _predict(args) -> int:
    from llmlab.scaling.predict import predict_run
    from llmlab.scaling.sweep import SweepConfig

    report = predict_run(SweepConfig(out=args.out), args.budget, depth=args.depth, run=not args.no_run,
                         progress=False if args.no_progress else None)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        line = (f"budget {report['budget']:.3g} FLOPs, depth-{report['depth']} ({report['params']:,} params, "
                f"{report['tokens']:,} tokens): predicted val_bpb {report['predicted_val_bpb']:.4f}")
        if "val_bpb" in report:
            line += f", measured {report['val_bpb']:.4f} (error {100 * report['error']:+.2f}%)"
        print(line)
    return 0
