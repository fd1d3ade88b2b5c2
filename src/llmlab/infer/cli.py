"""``llmlab generate`` and ``llmlab next``: run a trained model from its run folder.

    llmlab generate --model runs/base --prompt "To be, or not to be" --temperature 0.8 --top-p 0.95 --stream
    llmlab generate --model runs/base --prompt "ROMEO:" --n 4 --seed 0 --logprobs 3 --json
    llmlab generate --model runs/base --prompt "The cat sat on a" --greedy --explain --plot dist.png
    llmlab next --model runs/base --prompt "The cat sat on a" --top 10 [--plot next.png] [--json]

The handlers parse nothing themselves: they build ``SamplingParams`` and call ``llmlab.infer.text`` /
``llmlab.infer.explain``, which a test can call too.
"""

from __future__ import annotations

import argparse
import json
import sys


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="RUN", help="run folder (model.safetensors + tokenizer/)")
    p.add_argument("--prompt", required=True,
                   help="prompt text (the bos token is put in front when the model's tokenizer adds one: always for "
                   "llmlab's <|bos|>)")
    p.add_argument("--no-bos", action="store_true", help="don't put the bos token in front of the prompt")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--truncate", choices=["left"], default=None,
                   help="cut a prompt longer than the context from the left instead of refusing it")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate text from a trained model (every decoding strategy)",
                       description="Generate a continuation of --prompt with a trained model.")
    _add_model_args(p)
    p.add_argument("--compile", action="store_true",
                   help="decode with the ahead-of-time compiled step (infer/compiled.py: 2-4x faster per token on a "
                   "CPU; the first use of a model shape compiles it, ~30-60 s, then it is cached)")
    s = p.add_argument_group("decoding")
    s.add_argument("--max-new-tokens", type=int, default=256, help="stop after this many new tokens")
    s.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy")
    s.add_argument("--greedy", action="store_true", help="same as --temperature 0")
    s.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0 = off)")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus: keep the smallest set with this mass")
    s.add_argument("--min-p", type=float, default=0.0, help="keep tokens with prob >= min_p * top prob")
    s.add_argument("--repetition-penalty", type=float, default=1.0, help="HF/CTRL penalty on seen tokens (>1)")
    s.add_argument("--frequency-penalty", type=float, default=0.0, help="subtract f * count of generated token")
    s.add_argument("--presence-penalty", type=float, default=0.0, help="subtract r once a token was generated")
    s.add_argument("--logit-bias", action="append", default=[], metavar="ID=BIAS",
                   help="add BIAS to token ID's logit (repeatable)")
    s.add_argument("--stop", action="append", default=[], metavar="STR", help="stop string (repeatable)")
    s.add_argument("--stop-token-id", action="append", type=int, default=[], metavar="ID",
                   help="stop token id (repeatable; the model's stop tokens -- <|end|>, <|endoftext|>, <|bos|> for "
                   "llmlab's -- always stop unless --ignore-eos)")
    s.add_argument("--ignore-eos", action="store_true", help="don't stop at end tokens (for benchmarks)")
    s.add_argument("--seed", type=int, default=None, help="makes sampling reproducible")
    s.add_argument("--n", type=int, default=1, help="samples for the prompt (one shared prefill)")
    s.add_argument("--logprobs", type=int, default=None, metavar="N",
                   help="report each token's logprob and the top N alternatives (0 = chosen token only)")
    o = p.add_argument_group("output")
    o.add_argument("--stream", action="store_true", help="print text as it is generated")
    o.add_argument("--json", action="store_true", help="print one JSON object (text, token_ids, speeds, ...)")
    o.add_argument("--explain", action="store_true", help="show each step's top candidates and probabilities")
    o.add_argument("--explain-top", type=int, default=5, help="candidates per step for --explain")
    o.add_argument("--plot", metavar="FILE.png", help="with --explain: bar chart of the first step's distribution")
    p.set_defaults(func=_generate)

    q = sub.add_parser("next", help="show the next-token probabilities for a prompt (one step)",
                       description="One forward pass: the most likely next tokens after --prompt.")
    _add_model_args(q)
    q.add_argument("--top", type=int, default=10, help="how many candidates to show")
    q.add_argument("--plot", metavar="FILE.png", help="save a bar chart of the candidates")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.set_defaults(func=_next)


def _load(args):
    import torch

    from llmlab.errors import LlmlabError
    from llmlab.runs import load_run

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise LlmlabError(f"--device {device}: CUDA is not available on this machine")
    return load_run(args.model, device=device)


def _params(args):
    from llmlab.errors import LlmlabError
    from llmlab.infer.sampling import SamplingParams

    bias = {}
    for item in args.logit_bias:
        tok, sep, val = item.partition("=")
        try:
            bias[int(tok)] = float(val)
        except ValueError:
            raise LlmlabError(f"--logit-bias {item!r}: expected ID=BIAS, e.g. 42=-100") from None
        if not sep:
            raise LlmlabError(f"--logit-bias {item!r}: expected ID=BIAS, e.g. 42=-100")
    return SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=0.0 if args.greedy else args.temperature,
        top_k=args.top_k, top_p=args.top_p, min_p=args.min_p, repetition_penalty=args.repetition_penalty,
        frequency_penalty=args.frequency_penalty, presence_penalty=args.presence_penalty, logit_bias=bias,
        stop_token_ids=tuple(args.stop_token_id), stop=tuple(args.stop), ignore_eos=args.ignore_eos,
        seed=args.seed, n=args.n, logprobs=args.logprobs,
    )


def _logprob_json(tokenizer, c) -> list[dict] | None:
    from llmlab.infer.explain import token_text

    if c.logprobs is None:
        return None
    out = []
    for i, (tok, lp) in enumerate(zip(c.token_ids, c.logprobs)):
        item = {"token_id": tok, "token": token_text(tokenizer, tok), "logprob": lp}
        if c.top_logprobs is not None:
            item["top"] = [{"token_id": t, "token": token_text(tokenizer, t), "logprob": v} for t, v in c.top_logprobs[i]]
        out.append(item)
    return out


def _generate(args) -> int:
    from dataclasses import asdict

    from llmlab.errors import LlmlabError
    from llmlab.infer.engine import Engine
    from llmlab.infer.text import generate_text, stop_ids_for, stream_text

    params = _params(args)
    if args.stream and (args.json or args.n > 1 or args.explain):
        raise LlmlabError("--stream prints one sample as plain text; don't combine it with --json, --n > 1 or --explain")
    if args.plot and not args.explain:
        raise LlmlabError("--plot needs --explain (or use `llmlab next --plot`)")
    model, tokenizer = _load(args)
    engine = Engine(model, eos_token_ids=stop_ids_for(tokenizer), compile=args.compile)
    add_bos = not args.no_bos

    if args.stream:
        holder: dict = {}
        for d in stream_text(engine, tokenizer, args.prompt, params, truncate=args.truncate, add_bos=add_bos,
                             _result=holder):
            print(d.text, end="", flush=True)
        print()
        _print_speed(holder["generation"].stats)
        return 0

    steps = None
    if args.explain:
        from llmlab.infer.explain import explain_generation, format_steps, plot_candidates

        out, steps = explain_generation(engine, tokenizer, args.prompt, params, top=args.explain_top,
                                        add_bos=add_bos, truncate=args.truncate)
        if args.plot and steps:
            plot_candidates(steps[0].candidates, args.plot, title=f"after {args.prompt[-60:]!r}")
    else:
        out = generate_text(engine, tokenizer, args.prompt, params, truncate=args.truncate, add_bos=add_bos)

    st = out.stats
    if args.json:
        first = out.completions[0]
        obj = {
            "prompt": out.prompt,
            "prompt_tokens": len(out.prompt_token_ids),
            "text": first.text,
            "token_ids": first.token_ids,
            "finish_reason": first.finish_reason,
            "choices": [
                {"index": c.index, "text": c.text, "token_ids": c.token_ids, "finish_reason": c.finish_reason,
                 "stop": c.stop, **({"logprobs": _logprob_json(tokenizer, c)} if c.logprobs is not None else {})}
                for c in out.completions
            ],
            "prefill_tokens": st.prefill_tokens,
            "generated_tokens": sum(len(c.token_ids) for c in out.completions),
            "prefill_tokens_per_sec": st.prefill_tokens_per_sec,
            "decode_tokens_per_sec": st.decode_tokens_per_sec,
            "params": {k: v for k, v in asdict(params).items() if k != "logit_bias"}
            | {"logit_bias": {str(k): v for k, v in params.logit_bias.items()}},
        }
        if first.logprobs is not None:
            obj["logprobs"] = _logprob_json(tokenizer, first)
        if steps is not None:
            obj["explain"] = [
                {"index": s.index, "token": s.chosen.text, "prob": s.chosen.prob,
                 "candidates": [{"token_id": c.token_id, "token": c.text, "prob": c.prob} for c in s.candidates]}
                for s in steps
            ]
        print(json.dumps(obj, ensure_ascii=False))
        return 0

    if steps is not None:
        print(format_steps(steps))
        print()
    for c in out.completions:
        if len(out.completions) > 1:
            print(f"--- sample {c.index} ({c.finish_reason}) ---")
        print(out.prompt + c.text)
        if c.logprobs is not None and not args.explain:
            from llmlab.infer.explain import show, token_text

            for i, (tok, lp) in enumerate(zip(c.token_ids, c.logprobs)):
                alts = "" if c.top_logprobs is None else "  " + "  ".join(
                    f"{show(token_text(tokenizer, t))} {v:.3f}" for t, v in c.top_logprobs[i])
                print(f"  {i:>4} {show(token_text(tokenizer, tok)):<16} {lp:8.3f}{alts}")
    _print_speed(st)
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _print_speed(st) -> None:
    print(f"[prefill {st.prefill_tokens} tokens at {st.prefill_tokens_per_sec:.0f} tok/s, decode "
          f"{st.decode_tokens} tokens at {st.decode_tokens_per_sec:.1f} tok/s]", file=sys.stderr)


def _next(args) -> int:
    from llmlab.infer.explain import format_candidates, next_token_candidates, plot_candidates

    model, tokenizer = _load(args)
    cands = next_token_candidates(model, tokenizer, args.prompt, top=args.top, add_bos=not args.no_bos,
                                  truncate=args.truncate)
    if args.plot:
        plot_candidates(cands, args.plot, title=f"after {args.prompt[-60:]!r}")
    if args.json:
        print(json.dumps({"prompt": args.prompt, "candidates": [
            {"token_id": c.token_id, "token": c.text, "prob": c.prob} for c in cands]}, ensure_ascii=False))
    else:
        print(f"after {args.prompt!r}:")
        print(format_candidates(cands))
        if args.plot:
            print(f"wrote {args.plot}", file=sys.stderr)
    return 0
