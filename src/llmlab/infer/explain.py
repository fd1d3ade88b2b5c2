"""Showing the probabilities: the seeds' "the cat sat on a -> mat 97%", step by step, as text and as a picture.

    llmlab next --model RUN --prompt "The cat sat on a" --top 10 [--plot next.png]
    llmlab generate --model RUN --prompt "The cat sat on a" --explain [--plot dist.png]

    from llmlab.infer.explain import next_token_candidates, explain_generation, plot_candidates
    cands = next_token_candidates(model, tokenizer, "The cat sat on a", top=10)   # [Candidate(' mat', 0.97), ...]

The probabilities shown are the model's own (softmax of the raw logits, temperature 1), whatever decoding
strategy then picks the token; the explanation of a generation reuses the engine's per-token top-k logprobs,
so it costs no extra forward passes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from llmlab.infer.engine import Engine
from llmlab.infer.sampling import SamplingParams


@dataclass
class Candidate:
    token_id: int
    text: str  # a display form: partial UTF-8 bytes shown as \\xNN
    prob: float


@dataclass
class ExplainedStep:
    """One generated token and the candidates the model weighed for that position."""

    index: int
    context: str  # the text so far (prompt + tokens before this one), for display
    chosen: Candidate
    candidates: list[Candidate]


def token_text(tokenizer, token_id: int) -> str:
    """How to show one token: its text, with bytes that are only part of a character as \\xNN escapes."""
    return tokenizer.token_bytes(token_id).decode("utf-8", errors="backslashreplace")


def show(text: str) -> str:
    """Quoted display form of a token's text: control characters escaped, \\xNN byte escapes kept single."""
    return repr(text).replace("\\\\x", "\\x")


def next_token_candidates(model_or_engine, tokenizer, prompt: str | list[int], top: int = 10,
                          add_bos: bool = True, truncate: str | None = None) -> list[Candidate]:
    """The ``top`` most likely next tokens after ``prompt`` with their probabilities (one forward pass)."""
    import torch

    from llmlab.infer.text import encode_prompt, stop_ids_for

    engine = model_or_engine if isinstance(model_or_engine, Engine) else Engine(model_or_engine, stop_ids_for(tokenizer))
    ids = encode_prompt(tokenizer, prompt, add_bos) if isinstance(prompt, str) else list(prompt)
    probs = torch.softmax(engine.next_token_logits(ids, truncate=truncate), dim=-1)  # (V,)
    p, idx = torch.topk(probs, min(top, probs.shape[0]))
    return [Candidate(i, token_text(tokenizer, i), v) for i, v in zip(idx.tolist(), p.tolist())]


def explain_generation(model_or_engine, tokenizer, prompt: str, params: SamplingParams, top: int = 5,
                       add_bos: bool = True, truncate: str | None = None):
    """Generate (first sample) and return ``(TextOutput, [ExplainedStep, ...])``."""
    from llmlab.infer.text import generate_text

    params = params.replace(logprobs=max(top, params.logprobs or 0), logprobs_mode="raw")
    out = generate_text(model_or_engine, tokenizer, prompt, params, add_bos=add_bos, truncate=truncate)
    c = out.completions[0]
    steps, context = [], prompt
    for i, tok in enumerate(c.token_ids):
        cands = [Candidate(t, token_text(tokenizer, t), math.exp(lp)) for t, lp in c.top_logprobs[i][:top]]
        chosen = Candidate(tok, token_text(tokenizer, tok), math.exp(c.logprobs[i]))
        steps.append(ExplainedStep(i, context, chosen, cands))
        context += chosen.text
    return out, steps


def format_candidates(cands: list[Candidate], width: int = 30) -> str:
    """A text table: rank, token, probability and a bar."""
    lines = []
    for rank, c in enumerate(cands, 1):
        bar = "█" * max(0, round(c.prob * width))
        lines.append(f"{rank:>3}  {show(c.text):<16} {100 * c.prob:6.2f}%  {bar}")
    return "\n".join(lines)


def format_steps(steps: list[ExplainedStep], tail: int = 40) -> str:
    """One line per generated token: '...context' -> chosen p% | alternatives."""
    lines = []
    for s in steps:
        ctx = s.context[-tail:]
        alts = "  ".join(f"{show(c.text)} {100 * c.prob:.1f}%" for c in s.candidates)
        lines.append(f"{s.index:>4}  …{show(ctx)} -> {show(s.chosen.text)} {100 * s.chosen.prob:.1f}%   | {alts}")
    return "\n".join(lines)


def plot_candidates(cands: list[Candidate], path: str | Path, title: str = "next-token distribution") -> Path:
    """Save a bar chart of the candidates' probabilities as a PNG (matplotlib Agg, atomic write)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmlab.utils.io import atomic_path

    path = Path(path)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(cands) + 2), 4))
    labels = [show(c.text) for c in cands]  # quoted, so leading spaces show
    bars = ax.bar(range(len(cands)), [100 * c.prob for c in cands], color="#4C72B0")
    for b, c in zip(bars, cands):
        ax.annotate(f"{100 * c.prob:.1f}%", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(range(len(cands)), labels, rotation=45, ha="right", fontsize=9)
    ax.set_ylabel("probability (%)")
    ax.set_title(title[:100])
    with warnings.catch_warnings():  # fonts without CJK glyphs warn per missing glyph; the bars still draw
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
