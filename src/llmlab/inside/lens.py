"""The logit lens: what the model would predict if it stopped after each layer.

    llmlab inside lens --model RUN --prompt "To be, or not to be, that is the" --out lens.png [--top 5] [--json]

    from llmlab.inside.lens import logit_lens, lens_json
    lens = logit_lens(model, ids)         # lens.logprobs (n_layer + 1, T, vocab): row 0 = the embeddings
    data = lens_json(model, tokenizer, "The cat sat on a", top=5)   # what the web UI draws

The residual stream after every block (and the token embeddings before the first) goes through the model's
own final norm and output head -- the readout the last layer gets -- so at the last layer the lens *is* the
model's output (``max_error`` checks it). Each position shows the top next-token guesses with their
probabilities, and for positions whose next token is in the prompt, that token's probability and rank at
every depth: how the prediction forms through the layers (nostalgebraist's "logit lens", 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llmlab.errors import LlmlabError
from llmlab.inside.trace import trace

LENS_FORMAT = "llmlab-logit-lens"


@dataclass
class Lens:
    ids: list[int]
    logprobs: torch.Tensor  # (n_layer + 1, T, vocab) log-softmax of the readout of each residual stream
    max_error: float  # |lens at the last layer - the model's logits|, largest


@torch.no_grad()
def logit_lens(model, ids: list[int]) -> Lens:
    t = trace(model, ids, attention=False)
    stack = torch.cat(t.residuals, dim=0)  # (n_layer + 1, T, d)
    norm, head = model.norm, model.lm_head
    w = head.weight
    logits = head(norm(stack.to(w.dtype))).float()  # (n_layer + 1, T, vocab)
    err = float((logits[-1] - t.logits[0]).abs().max())
    scale = float(t.logits.abs().max().clamp_min(1e-12))
    if err / scale > 1e-4:
        raise LlmlabError(f"the lens at the last layer differs from the model's output (error {err:.2e}): this "
                          "model's readout is not final norm + output head")
    return Lens(list(ids), torch.log_softmax(logits, dim=-1).cpu(), err)


def lens_json(model, tokenizer, prompt: str | list[int], *, top: int = 5, digits: int = 4) -> dict:
    """The logit lens of a prompt as JSON-ready data (``--json`` and the web UI)::

        {"tokens": [...], "token_ids": [...], "layers": ["embed", "1", ..., "L"],
         "top": [layer][position] -> [{"id", "token", "prob"}, ...] (most likely first),
         "next": [layer][position] -> {"id", "token", "prob", "rank"} of the prompt's own next token
                 (None at the last position), "max_error": ...}
    """
    from llmlab.infer.explain import token_text
    from llmlab.infer.text import encode_prompt

    ids = encode_prompt(tokenizer, prompt) if isinstance(prompt, str) else list(prompt)
    lens = logit_lens(model, ids)
    L1, T, V = lens.logprobs.shape
    probs = lens.logprobs.exp()
    p, idx = probs.topk(min(top, V), dim=-1)  # (L1, T, k)
    texts: dict[int, str] = {}

    def text(i: int) -> str:
        if i not in texts:
            texts[i] = token_text(tokenizer, i)
        return texts[i]

    top_rows = [[[{"id": int(i), "token": text(int(i)), "prob": round(float(q), digits)}
                  for q, i in zip(p[l, t].tolist(), idx[l, t].tolist())] for t in range(T)] for l in range(L1)]
    nxt = torch.tensor(ids[1:] + [0])
    own = probs.gather(-1, nxt.view(1, T, 1).expand(L1, T, 1))[..., 0]  # (L1, T)
    rank = (probs > own.unsqueeze(-1)).sum(-1) + 1  # (L1, T), 1 = the top guess
    next_rows = [[({"id": ids[t + 1], "token": text(ids[t + 1]), "prob": round(float(own[l, t]), digits),
                    "rank": int(rank[l, t])} if t + 1 < T else None) for t in range(T)] for l in range(L1)]
    return {"format": LENS_FORMAT, "version": 1, "tokens": [text(i) for i in ids], "token_ids": ids,
            "layers": ["embed"] + [str(i) for i in range(1, L1)], "top": top_rows, "next": next_rows,
            "max_error": lens.max_error}


def plot_lens(data: dict, path, title: str = "", max_positions: int = 32) -> None:
    """Rows: depth (embeddings at the bottom, the model's output at the top); columns: positions (the input
    token below each); each cell: the top guess for the next token, coloured by its probability, framed when
    it is the prompt's actual next token."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from llmlab.infer.explain import show
    from llmlab.utils.io import atomic_path

    T = len(data["tokens"])
    cols = list(range(max(0, T - max_positions), T))
    L1 = len(data["layers"])
    grid = [[data["top"][l][t][0]["prob"] for t in cols] for l in range(L1)]
    fig, ax = plt.subplots(figsize=(2 + 0.95 * len(cols), 1.2 + 0.42 * L1))
    ax.imshow(grid, cmap="YlGnBu", vmin=0.0, vmax=1.0, origin="lower", aspect="auto")
    for l in range(L1):
        for j, t in enumerate(cols):
            best = data["top"][l][t][0]
            dark = best["prob"] > 0.6
            ax.text(j, l, show(best["token"])[1:-1][:7] + f"\n{100 * best['prob']:.0f}%", ha="center", va="center",
                    fontsize=6.5, color="white" if dark else "black")
            if data["next"][l][t] is not None and data["next"][l][t]["rank"] == 1:
                ax.add_patch(Rectangle((j - 0.5, l - 0.5), 1, 1, fill=False, edgecolor="crimson", lw=1.2))
    ax.set_xticks(range(len(cols)), [show(data["tokens"][t])[1:-1][:8] for t in cols], rotation=60, fontsize=7)
    ax.set_yticks(range(L1), data["layers"], fontsize=7)
    ax.set_xlabel("input position (the token there); cell: top guess for the next token")
    ax.set_ylabel("after layer")
    ax.set_title(title or "logit lens (framed: the guess is the prompt's actual next token)", fontsize=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
