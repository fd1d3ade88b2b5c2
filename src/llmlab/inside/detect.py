"""Detecting machine-written text from a model's own statistics: how likely the model finds each token, how
high it ranks it, how unsure it is, and how far the text's likelihood sits above what the model itself would
typically write there (Fast-DetectGPT's sampling discrepancy, computed exactly).

    llmlab inside detect --model RUN [--generator RUN2 --generator IMPORTED] --out roc.png [--json] [--n 200]

    from llmlab.inside.detect import DetectConfig, run_detection, text_features
    feats = text_features(model, tokenizer, texts, prompts)   # {"log_likelihood": [...], ...}, one per text
    report = run_detection(detector, [gen1, gen2], DetectConfig())   # AUCs and ROC curves

Human texts are chunks of held-out text (the bundled corpus's validation split by default): ``prompt_tokens +
new_tokens`` tokens each, spread evenly over it. Every generator (a run: ours, or an imported model) continues
each chunk's first ``prompt_tokens`` tokens for ``new_tokens`` tokens (temperature 0.8, top-p 0.95 by default;
special tokens barred). The detector model scores only the continuation (the tokens after the shared prompt),
human and machine alike. Features, each averaged over the continuation's tokens t with p_t the detector's
next-token distribution and x_t the token there:

* ``log_likelihood``   mean log p_t(x_t)                              (higher: machine)
* ``log_rank``         mean log rank of x_t under p_t (1 = top)       (lower: machine; DetectGPT's log-rank)
* ``entropy``          mean H(p_t)                                    (lower: machine)
* ``fast_detectgpt``   (sum log p_t(x_t) - sum mu_t) / sqrt(sum s2_t), with mu_t = E_{x~p_t} log p_t(x) and
  s2_t its variance: how many standard deviations the text's log-likelihood lies above that of the detector's
  own samples in the same contexts (Bao et al. 2024, the analytic form with the detector as its own sampler;
  DetectGPT's perturbation curvature approximated without a mask-filling model)  (higher: machine)

At temperature 1 with no truncation a model's own samples are hard to tell from held-out text of its training
distribution by these statistics: in every context the expected log p of its own sample is exactly -H(p_t),
and for a calibrated model so is that of real text on average (measured, docs/LOG.md: Fast-DetectGPT AUC 0.71
for the best CPU run's own text, 0.36 for a weaker, under-confident run's). Truncated sampling (lower
temperature, top-p) is what leaves the trace these features find (AUC 1.00 for the same best run).

The detector sees text: machine text is decoded and encoded again, as any text would be (a sampled token
sequence is not always the one its text encodes to; ``text_features(token_ids=...)`` scores the sampled ids).

Each feature's direction is fixed beforehand (as listed), never chosen after seeing the labels; the AUC is the
probability that a random machine text scores as more machine-like than a random human one (ties count half).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from llmlab.errors import LlmlabError

DETECT_FORMAT = "llmlab-detect"
# feature -> +1 when larger means machine-written, -1 when smaller does
FEATURES = {"log_likelihood": 1, "log_rank": -1, "entropy": -1, "fast_detectgpt": 1}


@dataclass
class DetectConfig:
    human: str = "bundled:val"  # held-out human text (any source llmlab reads)
    n: int = 200  # texts per class (per generator)
    prompt_tokens: int = 16
    new_tokens: int = 128
    temperature: float = 0.8  # how the README has our runs write (generate --temperature 0.8 --top-p 0.95)
    top_k: int = 0
    top_p: float = 0.95
    seed: int = 0
    batch_size: int = 16

    def validate(self) -> None:
        if self.n < 2 or self.prompt_tokens < 1 or self.new_tokens < 4 or self.batch_size < 1:
            raise LlmlabError("detect: need n >= 2, prompt_tokens >= 1, new_tokens >= 4, batch_size >= 1")


# ----------------------------------------------------------------------------------------------------------
# Features


@torch.no_grad()
def text_features(model, tokenizer, texts: list[str], prompts: list[str], batch_size: int = 16,
                  token_ids: list[list[int]] | None = None) -> dict[str, list]:
    """The four features of each text, scored on the tokens after its prompt (``texts[i]`` starts with
    ``prompts[i]``; an empty prompt scores every token after <|bos|>). The detector sees text: it encodes it
    itself. ``token_ids`` (prompt + continuation ids, as sampled by a model with this tokenizer) scores those
    exact tokens instead -- a sampled sequence need not be the one encoding its text gives back."""
    from llmlab.infer.text import encode_prompt

    device = next(model.parameters()).device
    ctx = model.config.max_seq_len
    rows = []
    for k, (text, prompt) in enumerate(zip(texts, prompts)):
        ids = (list(token_ids[k]) if token_ids is not None else encode_prompt(tokenizer, text))[:ctx]
        start = max(1, len(encode_prompt(tokenizer, prompt)))  # first scored target position
        if start >= len(ids):
            raise LlmlabError(f"a text has nothing after its prompt to score: {text[:60]!r}")
        rows.append((ids, start))
    out: dict[str, list] = {k: [] for k in FEATURES}
    out["tokens"] = []
    model.eval()
    for b in range(0, len(rows), batch_size):
        chunk = rows[b : b + batch_size]
        T = max(len(ids) for ids, _ in chunk)
        x = torch.zeros(len(chunk), T, dtype=torch.long)
        for i, (ids, _) in enumerate(chunk):
            x[i, : len(ids)] = torch.tensor(ids)
        logp = torch.log_softmax(model(x.to(device)).float(), dim=-1).cpu()  # (B, T, V)
        for i, (ids, start) in enumerate(chunk):
            lp = logp[i, start - 1 : len(ids) - 1]  # (n, V): the distributions that predict tokens start..end
            tgt = torch.tensor(ids[start:])
            picked = lp.gather(-1, tgt[:, None])[:, 0]  # (n,)
            rank = (lp > picked[:, None]).sum(-1) + 1
            p = lp.exp()
            mu = (p * lp).sum(-1)  # E log p = -entropy, (n,)
            var = (p * lp * lp).sum(-1) - mu * mu
            out["log_likelihood"].append(float(picked.mean()))
            out["log_rank"].append(float(rank.double().log().mean()))
            out["entropy"].append(float(-mu.mean()))
            out["fast_detectgpt"].append(float((picked.sum() - mu.sum()) / var.sum().clamp_min(1e-12).sqrt()))
            out["tokens"].append(len(tgt))
    return out


def auc(machine: list[float], human: list[float], sign: int = 1) -> float:
    """P(a machine text scores as more machine-like than a human one), ties half (Mann-Whitney U / n1 n0)."""
    m, h = sign * np.asarray(machine, float), sign * np.asarray(human, float)
    ranks = _ranks(np.concatenate([m, h]))
    u = ranks[: len(m)].sum() - len(m) * (len(m) + 1) / 2
    return float(u / (len(m) * len(h)))


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def roc(machine: list[float], human: list[float], sign: int = 1) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) over every threshold, machine = positive."""
    s = sign * np.concatenate([np.asarray(machine, float), np.asarray(human, float)])
    y = np.concatenate([np.ones(len(machine)), np.zeros(len(human))])
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    keep = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each distinct score
    tp, fp = np.cumsum(y)[keep], np.cumsum(1 - y)[keep]
    return [0.0] + (fp / len(human)).tolist(), [0.0] + (tp / len(machine)).tolist()


# ----------------------------------------------------------------------------------------------------------
# Texts


def human_chunks(tokenizer, source: str, n: int, prompt_tokens: int, new_tokens: int) -> list[tuple[str, str]]:
    """``n`` (prompt, text) pairs: chunks of ``prompt_tokens + new_tokens`` tokens spread evenly over the
    source's text, each cut at whitespace-free token boundaries as the tokenizer splits them."""
    from llmlab.data.ingest import iter_texts

    ids = [i for doc in iter_texts(source) for i in tokenizer.encode(doc)]
    size = prompt_tokens + new_tokens
    slots = len(ids) // size
    if slots < n:
        raise LlmlabError(f"{source}: {len(ids)} tokens make only {slots} chunks of {size}; need {n} "
                          "(lower --n or --new-tokens)")
    starts = [round(k * slots / n) * size for k in range(n)]
    return [(tokenizer.decode(ids[s : s + prompt_tokens]), tokenizer.decode(ids[s : s + size])) for s in starts]


@torch.no_grad()
def generate_continuations(model, tokenizer, prompts: list[str], cfg: DetectConfig,
                           with_ids: bool = False) -> list[str] | tuple[list[str], list[list[int]]]:
    """prompt + exactly ``new_tokens`` sampled tokens (no special tokens), for each prompt; ``with_ids`` also
    returns each sequence's token ids (prompt ids + sampled ids)."""
    from llmlab.infer.engine import Engine
    from llmlab.infer.sampling import SamplingParams
    from llmlab.infer.text import encode_prompt, stop_ids_for

    banned = {int(i): -1e9 for i in tokenizer.special_tokens.values()}
    params = SamplingParams(max_new_tokens=cfg.new_tokens, temperature=cfg.temperature, top_k=cfg.top_k,
                            top_p=cfg.top_p, ignore_eos=True, logit_bias=banned, seed=cfg.seed)
    engine = Engine(model, stop_ids_for(tokenizer))
    out, ids = [], []
    for b in range(0, len(prompts), cfg.batch_size):
        batch = prompts[b : b + cfg.batch_size]
        heads = [encode_prompt(tokenizer, p) for p in batch]
        results = engine.generate(heads, [params.replace(seed=cfg.seed + b + i) for i in range(len(batch))])
        out += [p + tokenizer.decode(r.samples[0].token_ids) for p, r in zip(batch, results)]
        ids += [h + r.samples[0].token_ids for h, r in zip(heads, results)]
    return (out, ids) if with_ids else out


# ----------------------------------------------------------------------------------------------------------
# The experiment


def run_detection(detector: tuple, generators: list[tuple[str, tuple]], cfg: DetectConfig, log=None) -> dict:
    """``detector`` = (model, tokenizer); ``generators`` = [(name, (model, tokenizer)), ...]. Returns the AUC
    and ROC curve of every feature for every generator's texts against the same human texts."""
    log = log or (lambda msg: print(f"llmlab inside detect: {msg}", file=sys.stderr, flush=True))
    cfg.validate()
    det_model, det_tok = detector
    if cfg.prompt_tokens + cfg.new_tokens + 1 > det_model.config.max_seq_len:
        raise LlmlabError(f"prompt_tokens + new_tokens + 1 = {cfg.prompt_tokens + cfg.new_tokens + 1} exceeds the "
                          f"detector's context {det_model.config.max_seq_len}")
    pairs = human_chunks(det_tok, cfg.human, cfg.n, cfg.prompt_tokens, cfg.new_tokens)
    prompts = [p for p, _ in pairs]
    human = text_features(det_model, det_tok, [t for _, t in pairs], prompts, cfg.batch_size)
    log(f"{cfg.n} human texts from {cfg.human} scored")
    report = {"format": DETECT_FORMAT, "version": 1, "config": asdict(cfg), "features": FEATURES,
              "human": {"texts": cfg.n, "mean": {k: float(np.mean(human[k])) for k in FEATURES}}, "generators": []}
    for name, (model, tok) in generators:
        torch.manual_seed(cfg.seed)
        texts = generate_continuations(model, tok, prompts, cfg)
        machine = text_features(det_model, det_tok, texts, prompts, cfg.batch_size)
        entry = {"name": name, "texts": len(texts), "example": texts[0][:300],
                 "mean": {k: float(np.mean(machine[k])) for k in FEATURES},
                 "auc": {k: auc(machine[k], human[k], s) for k, s in FEATURES.items()},
                 "roc": {k: dict(zip(("fpr", "tpr"), roc(machine[k], human[k], s))) for k, s in FEATURES.items()}}
        log(f"{name}: " + ", ".join(f"{k} AUC {v:.3f}" for k, v in entry["auc"].items()))
        report["generators"].append(entry)
    return report


def format_report(r: dict) -> str:
    c = r["config"]
    lines = [f"human: {r['human']['texts']} chunks of {c['human']} ({c['prompt_tokens']} prompt + {c['new_tokens']} "
             f"scored tokens); machine: the same prompts continued at temperature {c['temperature']:g}"
             + (f", top-k {c['top_k']}" if c["top_k"] else "") + (f", top-p {c['top_p']:g}" if c["top_p"] < 1 else ""),
             "AUC (machine vs human)         " + "  ".join(f"{k:>15}" for k in FEATURES)]
    for g in r["generators"]:
        lines.append(f"  {g['name'][-28:]:<28} " + "  ".join(f"{g['auc'][k]:>15.3f}" for k in FEATURES))
    return "\n".join(lines)


def plot_roc(r: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmlab.utils.io import atomic_path

    gens = r["generators"]
    fig, axes = plt.subplots(1, len(gens), figsize=(4.6 * len(gens), 4.4), squeeze=False)
    for ax, g in zip(axes[0], gens):
        for k in FEATURES:
            ax.plot(g["roc"][k]["fpr"], g["roc"][k]["tpr"], label=f"{k} (AUC {g['auc'][k]:.3f})", lw=1.4)
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
        ax.set_xlabel("false positive rate (human called machine)")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"text from …{g['name'][-50:]}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"machine-text detection by the detector's statistics ({r['human']['texts']} texts per class)",
                 fontsize=10)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)

