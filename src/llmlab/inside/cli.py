"""``llmlab inside attention|lens|reversal|detect``: wiring only; the work is in the modules beside this one.

    llmlab inside attention --model RUN --prompt "To be, or not to be" --out attn.png [--layers 0,1] [--heads 0]
    llmlab inside lens      --model RUN --prompt "To be, or not to be, that is the" --out lens.png [--top 5]
    llmlab inside reversal  --out runs/reversal [--plot reversal.png]
    llmlab inside detect    --model RUN [--generator RUN2 ...] --out roc.png [--n 200]
    (each takes --json: the data behind the picture, on stdout)

``--model`` is any run folder ``llmlab.runs.load_run`` reads: trained by llmlab or imported (``llmlab import hf``).
"""

from __future__ import annotations

import argparse
import json


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inside", help="see inside a model: attention maps, logit lens, reversal curse, detection",
                       description="Look inside a model: attention maps and the logit lens for a prompt, the "
                                   "reversal-curse experiment, and machine-text detection from its statistics.")
    isub = p.add_subparsers(dest="inside_command", metavar="<view>", required=True)

    q = isub.add_parser("attention", help="attention weights of every layer and head for a prompt (a grid)")
    q.add_argument("--model", required=True, help="run folder (trained or imported)")
    q.add_argument("--prompt", required=True, help="text to look at (<|bos|> is put in front as generate does)")
    q.add_argument("--layers", type=_ints, default=None, help="layers to show, e.g. 0,1 (default all)")
    q.add_argument("--heads", type=_ints, default=None, help="heads to show (default all)")
    q.add_argument("--out", default=None, help="PNG to write")
    q.add_argument("--json", action="store_true", help="print the weights as JSON")
    q.set_defaults(func=_attention)

    q = isub.add_parser("lens", help="the logit lens: the top next-token guess after every layer")
    q.add_argument("--model", required=True, help="run folder (trained or imported)")
    q.add_argument("--prompt", required=True, help="text to look at")
    q.add_argument("--top", type=int, default=5, help="guesses kept per layer and position")
    q.add_argument("--out", default=None, help="PNG to write")
    q.add_argument("--json", action="store_true", help="print the lens as JSON")
    q.set_defaults(func=_lens)

    q = isub.add_parser("reversal", help="the reversal curse: train on 'A's mother is B', test both ways",
                        description="Made-up mothers and sons, trained one way; accuracy A->B and B->A.")
    q.add_argument("--out", required=True, help="experiment folder (facts, the model, reversal.json)")
    q.add_argument("--pairs", type=int, default=None, help="pairs trained one way only")
    q.add_argument("--both-pairs", type=int, default=None, help="pairs trained both ways (the control)")
    q.add_argument("--max-steps", type=int, default=None, help="training steps")
    q.add_argument("--preset", default=None, help="model preset (default depth-2)")
    q.add_argument("--seed", type=int, default=None)
    q.add_argument("--plot", default=None, help="PNG of the accuracies")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_reversal)

    q = isub.add_parser("detect", help="machine-text detection: ROC and AUC of the model's statistics",
                        description="Held-out human text vs continuations written by runs, scored by --model.")
    q.add_argument("--model", required=True, help="the detector's run folder")
    q.add_argument("--generator", action="append", default=None,
                   help="a run whose text to detect (repeatable; default: the detector itself)")
    q.add_argument("--human", default=None, help="human text source (default bundled:val)")
    q.add_argument("--n", type=int, default=None, help="texts per class")
    q.add_argument("--prompt-tokens", type=int, default=None, help="human tokens given as the prompt")
    q.add_argument("--new-tokens", type=int, default=None, help="tokens generated and scored")
    q.add_argument("--temperature", type=float, default=None, help="generators' sampling temperature")
    q.add_argument("--top-k", type=int, default=None, help="generators' top-k (0 = off)")
    q.add_argument("--top-p", type=float, default=None, help="generators' top-p (1 = off)")
    q.add_argument("--seed", type=int, default=None)
    q.add_argument("--out", default=None, help="PNG of the ROC curves")
    q.add_argument("--json", action="store_true", help="print the report (AUCs, ROC points) as JSON")
    q.set_defaults(func=_detect)


def _attention(args) -> int:
    from llmlab.inside.attention import attention_json, plot_attention
    from llmlab.runs import load_run

    model, tok = load_run(args.model)
    data = attention_json(model, tok, args.prompt, layers=args.layers, heads=args.heads)
    if args.out:
        plot_attention(data, args.out, title=f"attention: {args.model}")
    if args.json:
        print(json.dumps(data))
    else:
        print(f"{len(data['layers'])} layers x {len(data['heads'])} heads over {len(data['tokens'])} tokens "
              f"(recomputed vs the model's attention output: max relative error {data['max_error']:.1e})"
              + (f"; wrote {args.out}" if args.out else ""))
    return 0


def _lens(args) -> int:
    from llmlab.infer.explain import show
    from llmlab.inside.lens import lens_json, plot_lens
    from llmlab.runs import load_run

    model, tok = load_run(args.model)
    data = lens_json(model, tok, args.prompt, top=args.top)
    if args.out:
        plot_lens(data, args.out, title=f"logit lens: {args.model}")
    if args.json:
        print(json.dumps(data))
        return 0
    width = max(8, max(len(show(t)) for t in data["tokens"]))
    print(f"{'token':<{width}}  " + "  ".join(f"{name:>16}" for name in data["layers"]))
    for t, token in enumerate(data["tokens"]):
        cells = [f"{show(row[t][0]['token'])[:10]:>10} {100 * row[t][0]['prob']:4.0f}%" for row in data["top"]]
        print(f"{show(token):<{width}}  " + "  ".join(f"{c:>16}" for c in cells))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _reversal(args) -> int:
    from llmlab.inside.reversal import ReversalConfig, format_report, plot_report, run_reversal
    from llmlab.utils.config import override

    cfg = override(ReversalConfig(out=args.out), pairs=args.pairs, both_pairs=args.both_pairs,
                   max_steps=args.max_steps, preset=args.preset, seed=args.seed)
    report = run_reversal(cfg, progress=False if args.no_progress else None)
    if args.plot:
        plot_report(report, args.plot)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _detect(args) -> int:
    from llmlab.inside.detect import DetectConfig, format_report, plot_roc, run_detection
    from llmlab.runs import load_run
    from llmlab.utils.config import override

    cfg = override(DetectConfig(), human=args.human, n=args.n, prompt_tokens=args.prompt_tokens,
                   new_tokens=args.new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   seed=args.seed)
    detector = load_run(args.model)
    gens = [(g, detector if g == args.model else load_run(g)) for g in (args.generator or [args.model])]
    report = run_detection(detector, gens, cfg)
    report["detector"] = args.model
    if args.out:
        plot_roc(report, args.out)
    print(json.dumps(report) if args.json else format_report(report))
    return 0
