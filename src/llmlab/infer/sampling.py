"""Decoding strategies: ``SamplingParams`` and the pure functions that turn logits into the next token.

    from llmlab.infer.sampling import SamplingParams
    params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=64, seed=0)

The seeds' recipe -- "a probability for every possible next token, then pick one" -- happens here. Given the
model's logits for the next position, (B, V) with one row per sequence, the processing order is

    logit_bias -> repetition penalty -> frequency/presence penalties -> [allowed tokens] -> temperature -> top-k
    -> top-p -> min-p

and then a draw from the softmax of what is left (or argmax when ``temperature == 0``). A row with a
``constraint`` (constrained decoding: a grammar, a JSON schema) also gets every token its constraint does not
allow removed, right after the penalties, so greedy rows obey it too. Each stage follows the Hugging Face /
vLLM definition:

- ``logit_bias`` {token: b}: adds b to that token's logit (OpenAI's parameter; -100 effectively bans a token).
- ``repetition_penalty`` p (CTRL / HF): for every token already present in the prompt *or* the output, a
  positive logit is divided by p and a negative one multiplied by p (p > 1 discourages repeats).
- ``frequency_penalty`` f and ``presence_penalty`` r (OpenAI / vLLM): ``logit -= f * count + r * (count > 0)``
  where ``count`` is how often the token occurs in the *generated* tokens (not the prompt).
- ``temperature`` t: logits / t. t == 0 means greedy: the argmax after bias and penalties; ties go to the
  lowest token id (``torch.argmax`` returns the first maximum). top-k/top-p/min-p never remove the argmax, so
  they do not matter for greedy rows.
- ``top_k`` k (k > 0): keep the tokens whose logit is >= the k-th largest logit. Ties at the boundary are all
  kept (as HF's ``TopKLogitsWarper``), so more than k tokens survive only when several equal the k-th logit.
- ``top_p`` p (nucleus, p < 1): sort probabilities in descending order; a token is kept when the mass of the
  tokens strictly before it is < p (the smallest prefix whose mass reaches p; the top token always stays).
  Tokens whose probability equals the smallest kept probability are kept too, so the result does not depend
  on how the sort orders ties (HF keeps an arbitrary subset of such ties).
- ``min_p`` m (m > 0): keep tokens with probability >= m * (the top probability). Ties at the threshold kept.

Removed tokens get logit ``-inf``. Sampling draws one uniform number per row from that row's
``torch.Generator`` and inverts the cumulative distribution (in float64), so a seed reproduces a sequence
regardless of which other sequences share the batch. ``SamplingBatch`` holds the per-row parameters as
tensors so one batch may mix requests with different settings (the server's continuous batching needs it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from llmlab.errors import LlmlabError

# A removed token's logit. -inf (not a large negative number) so its probability is exactly 0.
MASKED = float("-inf")


class TokenConstraint(Protocol):
    """The state of one sample under constrained decoding (a grammar matcher, a JSON-schema automaton): the
    engine asks it before every token which tokens may come next and tells it the token chosen. Tokens forced
    into a row from outside (``Generation.force``) are not shown to it."""

    def allowed(self) -> torch.Tensor | None:
        """Bool (V,), True = may come next; None = no restriction at this point."""

    def advance(self, token_id: int) -> None:
        """The token the row produced (always one that ``allowed`` permitted)."""

    def done(self) -> bool:
        """True once the constraint is complete: the row then ends with ``finish_reason="stop"``."""


@dataclass
class SamplingParams:
    """How to pick each next token, and when to stop. Defaults: plain sampling at temperature 1."""

    max_new_tokens: int = 256
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    min_p: float = 0.0  # 0 = off
    repetition_penalty: float = 1.0  # 1 = off; applies to prompt and output tokens
    frequency_penalty: float = 0.0  # applies to output tokens, per occurrence
    presence_penalty: float = 0.0  # applies to output tokens, once
    logit_bias: dict[int, float] = field(default_factory=dict)
    stop_token_ids: tuple[int, ...] = ()  # always stop on these (the token is kept in the output ids)
    stop: tuple[str, ...] = ()  # stop strings: handled at the text edge (llmlab.infer.text), not the engine
    ignore_eos: bool = False  # don't stop on the engine's eos ids (stop_token_ids still apply)
    seed: int | None = None  # makes sampling reproducible; sample j of n uses a seed derived from (seed, j)
    n: int = 1  # samples per prompt, sharing one prefill
    logprobs: int | None = None  # None = off; 0 = the chosen token's logprob; k = plus the top-k alternatives
    logprobs_mode: str = "raw"  # "raw": log_softmax of the model's logits; "processed": of the final logits
    # Constrained decoding: called once per sample to make its TokenConstraint (each of n samples has its own
    # state). None = unconstrained.
    constraint: Callable[[], TokenConstraint] | None = None

    def __post_init__(self):
        self.stop_token_ids = tuple(int(t) for t in self.stop_token_ids)
        self.stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        self.logit_bias = {int(k): float(v) for k, v in (self.logit_bias or {}).items()}
        problems = []
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            problems.append(f"temperature must be >= 0, got {self.temperature}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            problems.append(f"top_k must be an integer >= 0 (0 = off), got {self.top_k!r}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p <= 1:
            problems.append(f"min_p must be in [0, 1], got {self.min_p}")
        if not self.repetition_penalty > 0:
            problems.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if not (math.isfinite(self.frequency_penalty) and math.isfinite(self.presence_penalty)):
            problems.append("frequency_penalty and presence_penalty must be finite")
        if not isinstance(self.n, int) or self.n < 1:
            problems.append(f"n must be a positive integer, got {self.n!r}")
        if self.logprobs is not None and (not isinstance(self.logprobs, int) or self.logprobs < 0):
            problems.append(f"logprobs must be None or an integer >= 0, got {self.logprobs!r}")
        if self.logprobs_mode not in ("raw", "processed"):
            problems.append(f"logprobs_mode must be 'raw' or 'processed', got {self.logprobs_mode!r}")
        if any(not s for s in self.stop):
            problems.append("stop strings must be non-empty")
        if self.constraint is not None and not callable(self.constraint):
            problems.append("constraint must be a callable that makes a TokenConstraint")
        if problems:
            raise LlmlabError("invalid sampling parameters: " + "; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def replace(self, **changes) -> "SamplingParams":
        """A copy with some fields changed (validated again)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw.update(changes)
        return SamplingParams(**kw)


# ----------------------------------------------------------------------------------------------------------
# Pure functions on logits (B, V). Per-row parameters are tensors of shape (B, 1) (or (B,) for top_k), or
# Python scalars that broadcast. Each returns a new tensor; none modifies its input.


def _col(x, logits: torch.Tensor) -> torch.Tensor:
    """A scalar or (B,) / (B, 1) per-row parameter as a (B or 1, 1) tensor on the logits' device and dtype."""
    t = torch.as_tensor(x, dtype=logits.dtype, device=logits.device)
    return t.reshape(-1, 1) if t.dim() else t.reshape(1, 1)


def apply_logit_bias(logits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """logits (B, V) + bias (B or 1, V): OpenAI's ``logit_bias`` as a dense tensor (0 where unset)."""
    return logits + bias


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty) -> torch.Tensor:
    """HF/CTRL repetition penalty. seen (B, V) bool: token occurs in the prompt or output so far.
    For seen tokens: logit / p if logit > 0 else logit * p."""
    p = _col(penalty, logits)
    penalized = torch.where(logits > 0, logits / p, logits * p)
    return torch.where(seen, penalized, logits)


def apply_frequency_presence(logits: torch.Tensor, counts: torch.Tensor, frequency, presence) -> torch.Tensor:
    """OpenAI/vLLM penalties. counts (B, V): occurrences of each token in the generated output so far."""
    counts = counts.to(logits.dtype)
    return logits - _col(frequency, logits) * counts - _col(presence, logits) * (counts > 0).to(logits.dtype)


def apply_temperature(logits: torch.Tensor, temperature) -> torch.Tensor:
    """logits / t for rows with t > 0; rows with t == 0 (greedy) are left unscaled."""
    t = _col(temperature, logits)
    return logits / torch.where(t > 0, t, torch.ones_like(t))


def top_k_mask(logits: torch.Tensor, k) -> torch.Tensor:
    """Bool (B, V), True = remove: logits below the row's k-th largest. k (B,) or int; k <= 0 keeps all."""
    V = logits.shape[-1]
    k = torch.as_tensor(k, device=logits.device).reshape(-1)
    k = torch.where(k > 0, k.clamp(max=V), torch.full_like(k, V))  # off -> k = V keeps everything
    kmax = int(k.max())
    top = torch.topk(logits, kmax, dim=-1).values  # (B, kmax), descending
    kth = top.gather(-1, (k - 1).reshape(-1, 1).expand(logits.shape[0], 1))  # (B, 1)
    return logits < kth


def top_p_mask(logits: torch.Tensor, p) -> torch.Tensor:
    """Bool (B, V), True = remove: outside the nucleus of mass p (see the module docstring; ties kept)."""
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs = torch.sort(probs, dim=-1, descending=True).values  # (B, V)
    mass_before = sorted_probs.cumsum(-1) - sorted_probs  # (B, V): mass of the tokens strictly before
    keep_sorted = mass_before < _col(p, sorted_probs)
    keep_sorted[:, 0] = True  # the top token always stays (also guards p so small that nothing passes)
    n_keep = keep_sorted.sum(-1, keepdim=True)  # (B, 1): kept tokens form a prefix of the sorted order
    threshold = sorted_probs.gather(-1, n_keep - 1)  # (B, 1): the smallest kept probability
    remove = probs < threshold
    return remove & (_col(p, probs) < 1)  # p == 1: keep all (float cumsum may not quite reach 1)


def min_p_mask(logits: torch.Tensor, min_p) -> torch.Tensor:
    """Bool (B, V), True = remove: probability < min_p * top probability. Computed as the ratio
    exp(logit - max logit), which equals prob / top prob without normalising."""
    ratio = torch.exp(logits.float() - logits.float().amax(-1, keepdim=True))
    return ratio < _col(min_p, ratio)


def sample_from_logits(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw one token per row from softmax(logits) (B, V) by inverting the CDF at uniforms (B,) in [0, 1).

    float64 keeps the cumulative sum accurate for large vocabularies. A token with probability 0 can never be
    drawn: the CDF is flat across it, and searching with right=True skips flat stretches."""
    probs = torch.softmax(logits.double(), dim=-1)  # (B, V)
    cdf = probs.cumsum(-1)
    target = uniforms.double().reshape(-1, 1) * cdf[:, -1:]  # (B, 1), strictly below the total
    idx = torch.searchsorted(cdf, target, right=True).clamp_(max=logits.shape[-1] - 1)  # (B, 1)
    # Rounding can in principle land on the flat tail past the last possible token; step back to it.
    last_possible = logits.shape[-1] - 1 - argmax((probs > 0).flip(-1).to(torch.uint8)).unsqueeze(-1)
    return torch.minimum(idx, last_possible).squeeze(-1)


def argmax(x: torch.Tensor) -> torch.Tensor:
    """``x.argmax(-1)`` (the first maximum; NaN counts as the maximum), through numpy for CPU tensors numpy
    holds: torch's CPU argmax over the last dimension took 162 us for (32, 2048) float32 and 2.4 ms for
    (32, 32000) on one thread, numpy's 6 us and 0.28 ms (docs/LOG.md, 2026-12-06), which a batched decode step
    of a small model notices."""
    if x.device.type != "cpu" or x.requires_grad or x.dtype not in (torch.float32, torch.float64, torch.uint8):
        return x.argmax(-1)
    return torch.from_numpy(np.asarray(x.numpy().argmax(-1)))


# ----------------------------------------------------------------------------------------------------------
# A batch of rows, each with its own parameters


def derived_seed(seed: int, sample_index: int) -> int:
    """Seed of sample j of a request with ``seed``: sample 0 uses the seed itself (so n=1 and sample 0 of n>1
    agree); others mix j in with a large odd multiplier (a 64-bit hash-like step, not a cryptographic one)."""
    if sample_index == 0:
        return int(seed)
    return (int(seed) * 0x9E3779B97F4A7C15 + sample_index * 0xBF58476D1CE4E5B9) % (2**63 - 1)


class SamplingBatch:
    """Per-row sampling parameters as tensors, plus the generators; ``process`` + ``choose`` run one step.

    Rows are dropped or repeated with ``select(rows)`` in lockstep with the KV cache. Stages that no row uses
    are skipped entirely, so a batch of greedy rows costs one argmax."""

    def __init__(self, params: Sequence[SamplingParams], vocab_size: int, device, generators):
        B, V = len(params), vocab_size
        self.params = list(params)
        self.vocab_size = V
        dev = torch.device(device)

        def col(values, dtype=torch.float32):
            return torch.tensor(values, dtype=dtype, device=dev).reshape(B, 1)

        self.temperature = col([p.temperature for p in params])
        self.any_greedy = any(p.greedy for p in params)
        self.all_greedy = all(p.greedy for p in params)
        # (B,); k >= V keeps every token, as k = V does (and a k too large for int64 must not overflow)
        self.top_k = torch.tensor([min(p.top_k, V) for p in params], dtype=torch.long, device=dev)
        self.top_p = col([p.top_p for p in params])
        self.min_p = col([p.min_p for p in params])
        self.rep = col([p.repetition_penalty for p in params])
        self.freq = col([p.frequency_penalty for p in params])
        self.pres = col([p.presence_penalty for p in params])
        self.use_top_k = any(p.top_k > 0 and not p.greedy for p in params)
        self.use_top_p = any(p.top_p < 1 and not p.greedy for p in params)
        self.use_min_p = any(p.min_p > 0 and not p.greedy for p in params)
        self.use_rep = any(p.repetition_penalty != 1 for p in params)
        self.use_freq = any(p.frequency_penalty != 0 or p.presence_penalty != 0 for p in params)
        self.bias = None  # (B, V) dense logit bias, only when some row sets one
        if any(p.logit_bias for p in params):
            self.bias = torch.zeros(B, V, device=dev)
            for i, p in enumerate(params):
                for tok, b in p.logit_bias.items():
                    if not 0 <= tok < V:
                        raise LlmlabError(f"logit_bias token id {tok} is outside the vocabulary (0..{V - 1})")
                    self.bias[i, tok] = b
        # One generator per row; rows without a seed share a single nondeterministically-seeded generator, so
        # their uniforms come from one call.
        self.generators = list(generators)

    @property
    def needs_history(self) -> bool:
        """Whether the penalties need the token history (``seen`` / ``counts``)."""
        return self.use_rep or self.use_freq

    def select(self, rows: torch.Tensor, rows_list: list[int]) -> None:
        """Keep rows (1-D index tensor; may repeat rows), in that order."""
        self.params = [self.params[i] for i in rows_list]
        self.generators = [self.generators[i] for i in rows_list]
        for name in ("temperature", "top_k", "top_p", "min_p", "rep", "freq", "pres", "bias"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.index_select(0, rows))

    def process(self, logits: torch.Tensor, seen: torch.Tensor | None, counts: torch.Tensor | None,
                allowed: torch.Tensor | None = None) -> torch.Tensor:
        """Raw logits (B, V) -> processed logits (B, V) (bias, penalties, allowed tokens, temperature, masks).
        ``allowed`` (B, V) bool: the constraints' masks (True = may come next), applied to greedy rows too."""
        x = logits.float()
        if self.bias is not None:
            x = apply_logit_bias(x, self.bias)
        if self.use_rep:
            x = apply_repetition_penalty(x, seen, self.rep)
        if self.use_freq:
            x = apply_frequency_presence(x, counts, self.freq, self.pres)
        if allowed is not None:
            x = x.masked_fill(~allowed, MASKED)
        if self.all_greedy:
            return x
        x = apply_temperature(x, self.temperature)
        if self.use_top_k:
            x = x.masked_fill(top_k_mask(x, torch.where(self.temperature.squeeze(1) > 0, self.top_k, 0)), MASKED)
        if self.use_top_p:
            x = x.masked_fill(top_p_mask(x, torch.where(self.temperature > 0, self.top_p, 1.0)), MASKED)
        if self.use_min_p:
            x = x.masked_fill(min_p_mask(x, torch.where(self.temperature > 0, self.min_p, 0.0)), MASKED)
        return x

    def uniforms(self) -> torch.Tensor:
        """(B,) uniforms in [0, 1), one per row from that row's generator."""
        gens = self.generators
        g0 = gens[0]
        dev = self.temperature.device
        if all(g is g0 for g in gens):
            return torch.rand(len(gens), generator=g0, device=dev, dtype=torch.float64)
        return torch.cat([torch.rand(1, generator=g, device=dev, dtype=torch.float64) for g in gens])

    def choose(self, processed: torch.Tensor) -> torch.Tensor:
        """Processed logits (B, V) -> next tokens (B,): argmax for greedy rows, a draw for the others."""
        greedy = argmax(processed)
        if self.all_greedy:
            return greedy
        drawn = sample_from_logits(processed, self.uniforms())
        if self.any_greedy:
            return torch.where(self.temperature.squeeze(1) == 0, greedy, drawn)
        return drawn
