"""The inference engine: token ids in, token ids out, with a preallocated KV cache and batched decoding.

    from llmlab.infer import Engine, SamplingParams
    engine = Engine(model, eos_token_ids=[tokenizer.end_id, tokenizer.eot_id])
    out = engine.generate([ids_a, ids_b], SamplingParams(temperature=0.8, n=4, logprobs=5, seed=0))
    out[0].samples[2].token_ids, out[0].samples[2].logprobs, out[0].samples[2].finish_reason

    for ev in engine.stream([ids], SamplingParams(temperature=0)):   # one TokenEvent per new token
        print(ev.token_id, ev.finish_reason)

    gen = engine.start(prompts, params)          # the open step loop (server, tools, tree search, RL)
    while not gen.done:
        events = gen.step()                       # one forward pass: one new token for every live row
        gen.add([new_ids], params)                # a request joins between steps (continuous batching)
        gen.finish(prompt_index, sample_index)    # a sample ends from outside (stop string, client gone)
        gen.force(prompt_index, sample_index, ids)   # tokens written into a live row (a tool's result)
    outputs = gen.outputs()

    gen = engine.open(keep_finished=False, max_rows=64, max_kv_slots=65536)   # a server's generation

How it works. A prefill pass runs the prompts that join together (left-padded to one length, or on a CPU in
groups of similar length, ``prefill_groups``; padding is masked out and each row gets its own RoPE positions, so a
row's numbers match running it alone) and samples
each row's first token. Then every ``step`` feeds each live row its last token and appends one slot to the
shared KV cache. ``n`` samples per prompt share the prompt's prefill. A row stops at one of its stop ids
(``finish_reason="stop"``, the stop id is kept in ``token_ids``), when its constraint is complete ("stop"),
after ``max_new_tokens``, or when prompt + output fill the model's context (both ``"length"``).

The cache, made to run for days. It is one preallocated block of (rows x slots) per layer that requests move
through; every row writes the same slot each step, and a row's earlier slots hold its tokens, right-aligned,
with masked slots in front (``pad``). The block is reused, not regrown:

* a request that joins is prefilled on its own and its keys/values are copied into a free row (a finished
  row's, or spare capacity) ending at the current slot; only when there is no free row, or a row needs more
  slots than the block has, is a larger block allocated (rows grow by half: rarely);
* a finished row rides along, ignored, until a quarter of the rows are finished; then live rows from the end
  move into the holes (copies of those rows only) and the batch shrinks;
* the masked prefix that all live rows share is cut off (every row's slots move left) when the block is full
  and when it is half the window, so the window never exceeds the longest live row and each step's attention
  reads little padding;
* a request is retired when its last sample ends (``keep_finished=False``; the caller keeps what it needs
  from the events), so nothing grows with the number of requests served.

So the cache holds at most ``rows x (context + 1)`` slots, and with ``max_rows`` / ``max_kv_slots`` a
generation refuses (``LlmlabError``; ``can_add`` asks first) a request that could not finish within them:
admission control for a server, whose queue holds what does not fit yet. ``benchmarks/bench_engine_soak.py``
runs 2,000 requests through one generation and prints cache size, resident memory and time per step.

Two primitives serve tools and constrained decoding between steps: ``force`` runs given tokens through a live
row in one pass (they join its output; the token after them is sampled at once), and a sample's ``constraint``
(``SamplingParams.constraint``, e.g. a JSON-schema grammar) removes the tokens it does not allow before every
draw. Sampling parameters are per prompt and may differ within a batch; a seeded sample draws from its own
``torch.Generator``, so its output does not depend on what else shares the batch. ``logprobs`` are of the
model's raw distribution by default (``logprobs_mode="processed"``: of the distribution actually sampled
from, after temperature and masks).

Context policy: a prompt must leave room for one new token (``len(prompt) < max_seq_len``); a longer one is
refused with ``LlmlabError``, or, with ``truncate="left"``, cut to its last ``max_seq_len - 1`` tokens.
Greedy output is token-for-token the output of re-running the full sequence each step (tests/infer checks).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from llmlab.errors import LlmlabError
from llmlab.infer.sampling import SamplingBatch, SamplingParams, TokenConstraint, derived_seed
from llmlab.model.gpt import KVCache


@dataclass
class TokenEvent:
    """One new token of one sequence, as a step produces it."""

    prompt_index: int  # which prompt (position in the list given to start/generate/stream)
    sample_index: int  # which of its n samples
    token_id: int
    index: int  # position of this token in the sample's output (0 = first new token)
    logprob: float | None = None  # log-probability of token_id (when SamplingParams.logprobs is not None)
    top_logprobs: list[tuple[int, float]] | None = None  # the top-k alternatives, most likely first
    finish_reason: str | None = None  # "stop" or "length" on the sample's last token, else None
    forced: bool = False  # written by ``Generation.force``, not sampled (no logprob)


@dataclass
class Sample:
    """One finished (or, mid-generation, growing) sequence."""

    index: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float | None] | None = None  # None at forced tokens
    top_logprobs: list[list[tuple[int, float]] | None] | None = None
    finish_reason: str | None = None


@dataclass
class RequestOutput:
    """Everything generated for one prompt: its ``n`` samples. The request's handle while it runs."""

    prompt_index: int
    prompt_token_ids: list[int]
    samples: list[Sample]
    truncated: int = 0  # prompt tokens cut off by truncate="left"

    @property
    def finished(self) -> bool:
        return all(s.finish_reason is not None for s in self.samples)


@dataclass
class GenerationStats:
    prefill_tokens: int = 0  # real (unpadded) prompt tokens
    prefill_seconds: float = 0.0
    decode_tokens: int = 0  # tokens produced by decode steps (the first token of each row comes from prefill)
    decode_seconds: float = 0.0
    decode_steps: int = 0

    @property
    def prefill_tokens_per_sec(self) -> float:
        return self.prefill_tokens / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tokens_per_sec(self) -> float:
        return self.decode_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0


# A prefill pass's fixed cost in prompt tokens: what one more forward call costs beside the tokens it runs (a
# 1.1M-parameter model on one CPU thread: ~0.9 ms a call, ~0.055 ms a prompt token; docs/LOG.md). Larger models
# pay relatively less per call, so this errs toward fewer, more padded passes there.
PREFILL_CALL_TOKENS = 64
# On a GPU a small prefill is bound by kernel launches, not by the padded tokens: one pass unless the padding is
# large (a guess, not measured: no GPU was lent when this was written).
PREFILL_CALL_TOKENS_GPU = 4096


def prefill_groups(lens: Sequence[int], call_tokens: int = PREFILL_CALL_TOKENS) -> list[list[int]]:
    """Indices of the prompts of lengths ``lens`` in groups to prefill together, each padded to its longest:
    the split of the prompts, sorted by length, that minimises (padded tokens + ``call_tokens`` per group).
    One group when the lengths are close; 32 prompts of 20-120 tokens pad 2,277 tokens to ~2,500 instead of
    3,840 in one pass. Dynamic programming over the sorted lengths, O(n^2)."""
    order = sorted(range(len(lens)), key=lambda i: lens[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j sorted prompts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lens[order[j - 1]]
        for i in range(j):  # group = sorted prompts i..j-1, padded to the longest, lens[order[j-1]]
            c = best[i] + (j - i) * longest + call_tokens
            if c < best[j]:
                best[j], cut[j] = c, i
    groups, j = [], n
    while j > 0:
        groups.append(order[cut[j]:j])
        j = cut[j]
    return groups[::-1]


class Engine:
    """Runs a ``GPT`` for generation. ``eos_token_ids`` stop every row unless ``ignore_eos``.

    With ``fused=True`` (the default) the forward pass runs on a fused copy of the weights
    (``infer/fused.py``: fewer, larger operator calls, ~2x faster decode on a CPU). The copy is rebuilt
    whenever a parameter has changed since it was made (checked at every ``start``/``add``), so training
    updates are seen by the next generation (RL generates with the current policy). ``fused=False``, or a
    model class that overrides ``forward``, runs the model's own forward and holds no copy.

    ``compile=True`` runs the decode steps (one new token per row) through an ahead-of-time compiled step
    (``infer/compiled.py``: one C++ call per step; the first use of a model shape compiles it, ~30-60 s, then
    it loads from ``compile_dir``). Prefill stays eager, and so do steps whose large matmuls the eager forward
    runs faster than the compiled step's GEMMs (oneDNN for batches, column blocks on threads, OpenBLAS at one
    row: ``compiled_step_pays``). It needs the fused path."""

    def __init__(self, model: torch.nn.Module, eos_token_ids: Sequence[int] = (), *, fused: bool = True,
                 compile: bool = False, compile_dir=None, log=None, kv_dtype: torch.dtype | None = None):
        from llmlab.runs import unwrap

        self.model = unwrap(model)
        self.config = self.model.config
        self.eos_token_ids = tuple(int(t) for t in eos_token_ids)
        # Only a plain GPT's forward may be replaced: a subclass that overrides forward (a wrapper, a test
        # double, adapters) is run as it is.
        from llmlab.model.gpt import GPT

        self.fused = fused and isinstance(self.model, GPT) and type(self.model).forward is GPT.forward
        if compile and not self.fused:
            raise LlmlabError("compile=True needs the fused forward (a plain GPT and fused=True)")
        if compile:
            from llmlab.model.kernels.int8 import is_quantized

            if is_quantized(self.model):
                raise LlmlabError("the compiled decode step runs float weights; an int8 model decodes eagerly "
                                  "(drop --compile or --quantize)")
        # The KV cache's dtype (default: the weights'). A bf16 cache under fp32 weights (``serve --kv-dtype bf16``,
        # llama.cpp's f16 cache by default) halves the bytes a decode step's attention reads and the cache's memory;
        # the decode kernel reads it with float32 queries; SDPA gets the queries cast to it and the output back.
        self.kv_dtype = self.dtype if kv_dtype is None else kv_dtype
        if self.kv_dtype != self.dtype:
            if self.kv_dtype not in (torch.float32, torch.bfloat16, torch.float16):
                raise LlmlabError(f"kv_dtype must be float32, bfloat16 or float16, got {self.kv_dtype}")
            if not self.fused:
                raise LlmlabError("a KV cache in another dtype than the weights needs the fused forward "
                                  "(a plain GPT and fused=True)")
            if compile:
                raise LlmlabError("the compiled decode step reads a cache of the weights' dtype; drop --compile "
                                  "or the other KV dtype")
        self.compile, self.compile_dir = compile, compile_dir
        self.log = log  # progress notes of a first compile (default: to stderr)
        self._fused_weights = None
        self._decoder = None

    def forward_fn(self):
        """The forward pass to generate with (``GPT.forward``'s contract): the fused one, rebuilt if stale."""
        if not self.fused:
            return self.model
        from llmlab.infer.fused import FusedWeights

        fw = self._fused_weights
        if fw is None or fw.stale(self.model):
            self._fused_weights = None  # drop the old copy before building the new one (peak memory)
            with torch.inference_mode():
                # The compiled step computes RoPE's rotate-half in its fused elementwise code for free, so the
                # folded rotation rows (40% more q/k/v matmul) would only cost it.
                fold = False if self.compile else None
                fw = self._fused_weights = FusedWeights(self.model, fold_rotation=fold)
        return fw.forward

    def decode_fn(self):
        """The compiled decode step ``(tokens, positions, pad, cache) -> logits`` for the current weights, or
        None without ``compile``. Call after ``forward_fn`` (which refreshes the fused weights)."""
        if not self.compile:
            return None
        from llmlab.infer.compiled import CompiledDecoder, package_key

        fw = self._fused_weights
        if self._decoder is None or self._decoder.key != package_key(fw):
            kw = {} if self.log is None else {"log": self.log}
            self._decoder = CompiledDecoder.load_or_build(fw, self.compile_dir, **kw)
        return functools.partial(self._decoder.step, fw)

    def compiled_step_pays(self, rows: int) -> bool:
        """Whether a decode step of ``rows`` rows should run compiled rather than eager: not when the eager step
        sends most of its matmul work down a faster path the compiled step lacks (oneDNN for a large model's
        batch, column blocks on several threads, OpenBLAS at one row; see infer/fused.py)."""
        fw = self._fused_weights
        return fw is None or fw.eager_share(rows) < 0.5

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    # ------------------------------------------------------------------------------------------------------
    def start(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        truncate: str | None = None,
        **limits,
    ) -> "Generation":
        """Prefill the prompts and sample each row's first token; returns the generation to ``step``.
        ``limits``: ``keep_finished``, ``max_rows``, ``max_kv_slots`` (see ``Generation``)."""
        return Generation(self, prompts, params, truncate=truncate, **limits)

    def open(self, **limits) -> "Generation":
        """An empty generation that requests join with ``add`` (a server's scheduler). ``limits`` as ``start``."""
        return Generation(self, None, **limits)

    def kv_bytes_per_slot(self) -> int:
        """Bytes of keys + values that one row's one cache slot takes, over all layers."""
        c = self.config
        return 2 * c.n_layer * c.n_kv_head * c.head_dim * self.kv_dtype.itemsize

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        truncate: str | None = None,
    ) -> list[RequestOutput]:
        """Run to completion; one ``RequestOutput`` per prompt, each with its ``n`` samples."""
        with torch.inference_mode():  # once for the loop, not once a step (a few us of a ~200 us step)
            gen = self.start(prompts, params, truncate=truncate)
            while not gen.done:
                gen.step()
        return gen.outputs()

    def stream(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        truncate: str | None = None,
    ) -> Iterator[TokenEvent]:
        """Yield every new token as soon as its step has run (the first tokens come from the prefill)."""
        gen = self.start(prompts, params, truncate=truncate)
        yield from gen.first_events
        while not gen.done:
            yield from gen.step()

    @torch.inference_mode()
    def next_token_logits(self, prompt: Sequence[int], *, truncate: str | None = None) -> torch.Tensor:
        """Raw logits (V,) float32 for the token after ``prompt``: one forward pass, no cache."""
        ids, _ = self._check_prompt(list(prompt), truncate, 0)
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.forward_fn()(x, logits_to_keep=1)[0, -1].float()

    def _check_prompt(self, ids: list[int], truncate: str | None, index: int) -> tuple[list[int], int]:
        """Validate one prompt; apply the truncation policy. Returns (ids, number of tokens cut)."""
        ctx, V = self.config.max_seq_len, self.config.vocab_size
        if truncate not in (None, "left"):
            raise LlmlabError(f"unknown truncate policy {truncate!r}; use 'left' or none")
        if not ids:
            raise LlmlabError(f"prompt {index} is empty: the engine needs at least one token (e.g. <|bos|>)")
        try:
            ids = [int(t) for t in ids]  # numpy / 0-d tensor ids become plain ints
        except (TypeError, ValueError):
            raise LlmlabError(f"prompt {index} must be a list of integer token ids") from None
        bad = [t for t in ids if not 0 <= t < V]
        if bad:
            raise LlmlabError(f"prompt {index} has token id {bad[0]!r} outside the vocabulary (0..{V - 1})")
        if len(ids) >= ctx:
            if truncate == "left":
                cut = len(ids) - (ctx - 1)
                return ids[cut:], cut
            raise LlmlabError(
                f"prompt {index} has {len(ids)} tokens but the model's context is {ctx} tokens and needs room for "
                f"at least one new token; shorten the prompt or truncate it (truncate='left' / --truncate left)"
            )
        return ids, 0



class _CacheView(KVCache):
    """A ``KVCache`` over the first ``B`` rows of a larger preallocated block (a view: no copy). Each layer's
    (B, n_kv_head, slots, head_dim) slice of it is contiguous, which is all the forward pass needs."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor, length: int):
        self.k, self.v = k, v  # (n_layer, B, n_kv_head, slots, head_dim) views
        self.max_len = k.shape[3]
        self.length = length
        self._layer_views()


class _Row:
    """One sample being generated: its request, parameters, counters and (optional) constraint."""

    __slots__ = ("out", "sample", "params", "stops", "generator", "constraint", "sampled", "forced", "alive", "ctx")

    def __init__(self, out: RequestOutput, j: int, params: SamplingParams, stops: frozenset, generator, ctx: int):
        self.out, self.sample, self.params, self.stops = out, out.samples[j], params, stops
        self.generator = generator
        self.constraint: TokenConstraint | None = params.constraint() if params.constraint is not None else None
        self.sampled = 0  # tokens sampled so far (max_new_tokens counts these)
        self.forced = 0  # tokens written by Generation.force
        self.alive = True
        self.ctx = ctx

    @property
    def key(self) -> tuple[int, int]:
        return self.out.prompt_index, self.sample.index

    @property
    def prompt_len(self) -> int:
        return len(self.out.prompt_token_ids)

    @property
    def max_content(self) -> int:
        """The most cache slots this row can ever fill: prompt + output - 1 (the last token is never fed)."""
        return min(self.ctx, self.prompt_len + self.forced + self.params.max_new_tokens) - 1


class _Batch:
    """The rows of one forward pass and their tensors over a preallocated block (see the module docstring).

    ``k``/``v`` are (n_layer, rows_cap, n_kv_head, slots, head_dim); rows ``[0, B)`` are the batch (``rows[b]``
    is row b, dead ones riding along until compaction); ``S`` slots are filled, every row's masked ones being a
    prefix ``[0, pad[b])``. ``cache`` is the ``KVCache`` view of the batch the forward pass writes."""

    def __init__(self, cfg, device, dtype, rows_cap: int, slots: int):
        self.cfg, self.device = cfg, device
        shape = (cfg.n_layer, rows_cap, cfg.n_kv_head, slots, cfg.head_dim)
        # Zeros, not empty: masked slots are multiplied by -inf masks' zeros, and NaN garbage would poison them.
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self._pos = torch.zeros(rows_cap, 1, dtype=torch.long, device=device)  # next fed token's position
        self._pad = torch.zeros(rows_cap, dtype=torch.long, device=device)  # masked slots in front
        self._last = torch.zeros(rows_cap, 1, dtype=torch.long, device=device)  # newest token: next input
        self._seen = self._counts = None  # (rows_cap, V) bool / float32 token history, when penalties need it
        self.rows: list[_Row] = []
        self.S = 0
        self.sampler: SamplingBatch | None = None
        self.mask = None  # (B, 1, 1, slots) additive float mask, or None when no row has padding
        self.cache: _CacheView | None = None

    @property
    def rows_cap(self) -> int:
        return self.k.shape[1]

    @property
    def slots(self) -> int:
        return self.k.shape[3]

    @property
    def B(self) -> int:
        return len(self.rows)

    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()

    def live_index(self) -> list[int]:
        return [b for b, r in enumerate(self.rows) if r.alive]

    def refresh(self, vocab_size: int) -> None:
        """Rebuild the views, the sampler and the mask after the rows changed."""
        B = self.B
        self.pos, self.pad, self.last = self._pos[:B], self._pad[:B], self._last[:B]
        self.seen = self._seen[:B] if self._seen is not None else None
        self.counts = self._counts[:B] if self._counts is not None else None
        self.cache = _CacheView(self.k[:, :B], self.v[:, :B], self.S)
        self.cache.pad = self.pad  # (the masks below are exactly these prefixes)
        self.sampler = SamplingBatch([r.params for r in self.rows], vocab_size, self.device,
                                     [r.generator for r in self.rows]) if B else None
        self.rebuild_mask()

    def rebuild_mask(self) -> None:
        if not self.B or not bool(self.pad.any()):
            self.mask = None  # no padding anywhere: attention needs no mask
            return
        slots = torch.arange(self.slots, device=self.device).reshape(1, -1)  # (1, M)
        masked = slots < self.pad.reshape(-1, 1)  # (B, M)
        self.mask = torch.zeros(masked.shape, dtype=self.k.dtype, device=self.device)
        self.mask = self.mask.masked_fill_(masked, float("-inf")).reshape(self.B, 1, 1, -1)

    def retire(self, b: int) -> None:
        """Mark batch position b finished. Its position is reset to 0 so that riding along can never index
        past the RoPE table (a row that stopped at the context limit would)."""
        self.rows[b].alive = False
        self.pos[b, 0] = 0

    def ensure_history(self, vocab_size: int, history) -> None:
        """Allocate the token-history tensors (penalties) and fill them for the rows present."""
        if self._seen is None:
            cap = self.rows_cap
            self._seen = torch.zeros(cap, vocab_size, dtype=torch.bool, device=self.device)
            self._counts = torch.zeros(cap, vocab_size, dtype=torch.float32, device=self.device)
            if self.B:
                seen, counts = history(self.rows)
                self._seen[: self.B], self._counts[: self.B] = seen, counts

    def compact(self, force: bool = False) -> bool:
        """Drop the dead rows when they are a quarter of the batch (or ``force``): live rows from the end move
        into the holes (copies of those rows' slots only), and the batch shrinks. Returns whether it did."""
        B = self.B
        dead = [b for b, r in enumerate(self.rows) if not r.alive]
        if not dead or not (force or 4 * len(dead) >= B):
            return False
        keep = B - len(dead)
        holes = [b for b in dead if b < keep]
        movers = [b for b in range(keep, B) if self.rows[b].alive]
        if holes:
            dst = torch.tensor(holes, device=self.device)
            src = torch.tensor(movers, device=self.device)
            S = self.S
            for t in (self.k, self.v):
                t[:, dst, :, :S] = t[:, src, :, :S]  # (the right side is gathered into a copy first)
            for t in (self._pos, self._pad, self._last, self._seen, self._counts):
                if t is not None:
                    t[dst] = t[src]
            for h, m in zip(holes, movers):
                self.rows[h] = self.rows[m]
        del self.rows[keep:]
        return True

    def shift(self, delta: int) -> None:
        """Move every row's filled slots by ``delta`` (< 0: cut a masked prefix all rows share; > 0: add masked
        slots in front, to make room for a longer row). One layer at a time, so the temporary is one layer."""
        S, B = self.S, self.B
        if delta < 0:
            (a, b), (c, d) = (-delta, S), (0, S + delta)
        else:
            (a, b), (c, d) = (0, S), (delta, S + delta)
        for t in (self.k, self.v):
            for layer in t:  # (rows_cap, n_kv, slots, hd)
                src = layer[:B, :, a:b]
                layer[:B, :, c:d] = src.clone() if d > a and c < b else src
        self._pad[:B] = (self._pad[:B] + delta).clamp_(min=0)  # (dead rows may clamp; they are ignored)
        self.S = S + delta
        if self.cache is not None:
            self.cache.length = self.S
        self.rebuild_mask()

    def resize(self, rows_cap: int | None, slots: int, S: int, vocab_size: int) -> None:
        """A new block of ``rows_cap`` (None: exactly the live rows) x ``slots`` holding the live rows
        (compacted) with ``S`` filled slots (S >= every live row's content: rows keep their right-aligned
        slots, the common prefix is cut)."""
        self.compact(force=True)
        B, old_S = self.B, self.S
        rows_cap = B if rows_cap is None else rows_cap
        w = min(old_S, S)
        k, v = self.k, self.v
        shape = (k.shape[0], rows_cap, k.shape[2], slots, k.shape[4])
        self.k = torch.zeros(shape, device=self.device, dtype=k.dtype)
        self.v = torch.zeros(shape, device=self.device, dtype=k.dtype)
        if B and w:
            self.k[:, :B, :, S - w:S] = k[:, :B, :, old_S - w:old_S]
            self.v[:, :B, :, S - w:S] = v[:, :B, :, old_S - w:old_S]
        del k, v

        def grow(t):
            if t is None:
                return None
            new = torch.zeros((rows_cap,) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
            new[:B] = t[:B]
            return new

        self._pos, self._pad, self._last = grow(self._pos), grow(self._pad), grow(self._last)
        self._seen, self._counts = grow(self._seen), grow(self._counts)
        self._pad[:B] = (self._pad[:B] + (S - old_S)).clamp_(min=0)
        self.S = S
        self.refresh(vocab_size)


class Generation:
    """The state of a batched generation: KV cache, live rows and their per-row tensors.

    ``step()`` runs one decode pass and returns the new tokens as events; ``add()`` lets new prompts join
    between steps (continuous batching: their prefill runs on its own, then their rows take free rows of the
    cache); ``finish()`` ends a sample from outside; ``force()`` writes tokens into a live row. Requests are
    numbered (``prompt_index``) in the order they were added; ``live`` lists the (prompt, sample) pairs still
    generating.

    ``keep_finished=False`` retires a request as soon as its last sample ends (the event carrying that
    ``finish_reason`` is the caller's last word on it), so a generation that serves requests for days holds
    only the live ones. ``max_rows`` (samples at once) and ``max_kv_slots`` (rows x slots of the cache, the
    KV memory over ``Engine.kv_bytes_per_slot()``) bound the cache: ``add`` refuses requests that would not fit
    (``can_add`` asks first), the cache never grows past them."""

    def __init__(self, engine: Engine, prompts=None, params=None, *, truncate: str | None = None,
                 keep_finished: bool = True, max_rows: int | None = None, max_kv_slots: int | None = None):
        self.engine = engine
        self.forward = None  # GPT.forward's contract (see Engine); set by every add()
        self.decode = None  # the compiled decode step when the engine compiles (set with forward)
        self.stats = GenerationStats()
        self.keep_finished = keep_finished
        self.max_rows, self.max_kv_slots = max_rows, max_kv_slots
        if max_kv_slots is not None and max_kv_slots < 2:
            raise LlmlabError(f"max_kv_slots must be at least 2, got {max_kv_slots}")
        self._requests: dict[int, RequestOutput] = {}
        self._next_index = 0
        self.batch: _Batch | None = None
        # One generator shared by the rows without a seed, seeded from the OS.
        self._shared_gen = torch.Generator(device=engine.device)
        self._cuda = engine.device.type == "cuda"
        self._shared_gen.seed()
        self.first_events = [] if prompts is None else self.add(prompts, params, truncate=truncate)

    @property
    def live(self) -> list[tuple[int, int]]:
        """(prompt_index, sample_index) of every sample still generating, in batch order."""
        return [r.key for r in self.batch.rows if r.alive] if self.batch is not None else []

    @property
    def cache(self) -> KVCache:
        return self.batch.cache

    @property
    def done(self) -> bool:
        return self.batch is None or not any(r.alive for r in self.batch.rows)

    @property
    def next_prompt_index(self) -> int:
        """The ``prompt_index`` the next prompt added will get."""
        return self._next_index

    def kv_shape(self) -> tuple[int, int]:
        """(rows, slots) of the allocated cache block."""
        return (self.batch.rows_cap, self.batch.slots) if self.batch is not None else (0, 0)

    def kv_bytes(self) -> int:
        return self.batch.nbytes() if self.batch is not None else 0

    def request(self, prompt_index: int) -> RequestOutput:
        """The handle of a request the generation still holds (live, or finished and kept)."""
        try:
            return self._requests[prompt_index]
        except KeyError:
            raise LlmlabError(f"no request {prompt_index} in this generation (finished and retired?)") from None

    def outputs(self) -> list[RequestOutput]:
        """One ``RequestOutput`` per request held (every prompt, complete once ``done``, unless
        ``keep_finished=False`` retired the finished ones), in the order they were added."""
        return list(self._requests.values())

    def retire(self, prompt_index: int) -> None:
        """Forget a request: its live samples end (``finish_reason="stop"`` unless set) and its output goes."""
        out = self._requests.get(prompt_index)
        if out is None:
            return
        for s in out.samples:
            if s.finish_reason is None:
                self.finish(prompt_index, s.index)
        self._requests.pop(prompt_index, None)

    def _sync(self) -> None:
        if self._cuda:  # a flag, not engine.device: that is three module lookups, every decode step
            torch.cuda.synchronize(self.engine.device)

    # ------------------------------------------------------------------------------------------------------
    # Admission

    def _live_rows(self) -> list[_Row]:
        return [r for r in self.batch.rows if r.alive] if self.batch is not None else []

    def _admission_problem(self, lens: list[int], params: list[SamplingParams]) -> str | None:
        """Why these prompts (already checked, of lengths ``lens``) cannot join now, or None."""
        ctx = self.engine.config.max_seq_len
        live = self._live_rows()
        rows = len(live) + sum(p.n for p in params)
        if self.max_rows is not None and rows > self.max_rows:
            return f"{rows} rows would exceed max_rows={self.max_rows}"
        if self.max_kv_slots is not None:
            content = max([r.max_content for r in live] +
                          [min(ctx, n + p.max_new_tokens) - 1 for n, p in zip(lens, params)])
            need = rows * (content + 1)
            if need > self.max_kv_slots:
                return f"{rows} rows x {content + 1} slots would exceed max_kv_slots={self.max_kv_slots}"
        return None

    def can_add(self, prompts: Sequence[Sequence[int]], params: SamplingParams | Sequence[SamplingParams]) -> bool:
        """Whether ``add(prompts, params)`` would fit the limits now (the prompts are assumed valid)."""
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        ctx = self.engine.config.max_seq_len
        return self._admission_problem([min(len(p), ctx - 1) for p in prompts], list(params)) is None

    # ------------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def add(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        truncate: str | None = None,
    ) -> list[TokenEvent]:
        """Prefill more prompts and put their rows into the running batch; returns their first tokens.
        The new prompts' ``prompt_index`` continue after the earlier ones."""
        engine, cfg, dev = self.engine, self.engine.config, self.engine.device
        if params is None:
            params = SamplingParams()
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        if len(params) != len(prompts):
            raise LlmlabError(f"got {len(prompts)} prompts but {len(params)} sampling parameter sets")
        if not prompts:
            raise LlmlabError("no prompts to generate from")
        if isinstance(prompts[0], int):
            raise LlmlabError("prompts must be a list of token-id lists; wrap a single prompt as [ids]")
        base = self._next_index
        checked = [engine._check_prompt(list(p), truncate, base + i) for i, p in enumerate(prompts)]
        lens = [len(ids) for ids, _ in checked]
        problem = self._admission_problem(lens, list(params))
        if problem:
            raise LlmlabError(f"cannot add {len(prompts)} prompt(s) now: {problem}")
        self._next_index += len(prompts)
        P, L = len(prompts), max(lens)

        rows: list[_Row] = []
        src: list[int] = []  # prefill row of each new row
        outs = []
        for i, ((ids, cut), p) in enumerate(zip(checked, params)):
            out = RequestOutput(base + i, ids, [Sample(j) for j in range(p.n)], truncated=cut)
            outs.append(out)
            stops = frozenset(p.stop_token_ids) | (frozenset() if p.ignore_eos else frozenset(engine.eos_token_ids))
            for j in range(p.n):
                if p.logprobs is not None:
                    out.samples[j].logprobs = []
                    out.samples[j].top_logprobs = [] if p.logprobs > 0 else None
                # Seeded rows get their own generator, the rest share one.
                gen = self._shared_gen if p.seed is None else torch.Generator(device=dev).manual_seed(
                    derived_seed(p.seed, j))
                rows.append(_Row(out, j, p, stops, gen, cfg.max_seq_len))
                src.append(i)

        self.forward = engine.forward_fn()  # the weights may have changed since the last add
        self.decode = engine.decode_fn()  # (a first compile is not prefill time)
        self._sync()
        t0 = time.perf_counter()
        # Prefill: L prompt slots, left-padded, in a cache of their own (copied into the batch's block after).
        # Prompts of very different lengths are run in groups of similar length (``prefill_groups``), each
        # padded only to its own longest prompt and writing straight into its rows of ``tmp``: tmp row r holds
        # prompt order[r], its tokens in slots [L - len, L), as one padded pass would leave them.
        groups = prefill_groups(lens, PREFILL_CALL_TOKENS if dev.type == "cpu" else PREFILL_CALL_TOKENS_GPU)
        order = [i for g in groups for i in g]
        tmp = KVCache(cfg, P, L, dev, engine.kv_dtype, zeros=False)
        logits, r0 = None, 0
        for g in groups:
            n, Lg = len(g), max(lens[i] for i in g)
            for t in (tmp.k, tmp.v):  # the slots in front of the group's own window: zeros, as masked slots are
                t[:, r0:r0 + n, :, :L - Lg].zero_()
            part = self._prefill([checked[i][0] for i in g],
                                 _CacheView(tmp.k[:, r0:r0 + n, :, L - Lg:], tmp.v[:, r0:r0 + n, :, L - Lg:], 0))
            logits = part.new_empty(P, part.shape[1]) if logits is None else logits
            logits[r0:r0 + n] = part  # (n, V)
            r0 += n
        row_of = [0] * P
        for r, i in enumerate(order):
            row_of[i] = r
        src = [row_of[i] for i in src]  # tmp row of each new row
        rep = torch.tensor(src, device=dev)
        if src != list(range(P)):
            logits = logits.index_select(0, rep)  # (R, V): each new row's
        sampler = SamplingBatch([r.params for r in rows], cfg.vocab_size, dev, [r.generator for r in rows])
        seen = counts = None
        if sampler.needs_history:
            seen, counts = self._history(rows)
        tokens, lps, tops = self._choose(rows, logits, sampler, seen, counts)
        for out in outs:  # held from here on (a failure above leaves the generation as it was)
            self._requests[out.prompt_index] = out
        events = [self._record(r, t, lp, top) for r, t, lp, top in zip(rows, tokens, lps, tops)]
        # In tmp's row order, so that the usual case (every prompt one live row) joins tmp as it is.
        keep = sorted((i for i, r in enumerate(rows) if r.alive), key=lambda i: src[i])
        if keep:
            idx = torch.tensor(keep, device=dev)
            self._join([rows[i] for i in keep], tmp, rep.index_select(0, idx), L,
                       torch.tensor([tokens[i] for i in keep], device=dev),
                       None if seen is None else (seen.index_select(0, idx), counts.index_select(0, idx)))
        self._sync()
        self.stats.prefill_tokens += sum(lens)
        self.stats.prefill_seconds += time.perf_counter() - t0
        return events

    def _prefill(self, prompts: list[list[int]], tmp: KVCache) -> torch.Tensor:
        """One padded prefill pass: the next-token logits (n, V) of ``prompts``; their keys/values go to ``tmp``
        (n rows of as many slots as the longest prompt, empty), left-padded."""
        dev, dtype = self.engine.device, self.engine.kv_dtype  # (the mask meets the queries in the cache's dtype)
        lens = [len(x) for x in prompts]
        P, L = len(prompts), max(lens)
        pads = [L - n for n in lens]
        ids = torch.tensor([[0] * pad + list(x) for pad, x in zip(pads, prompts)], dtype=torch.long, device=dev)
        positions = attn_mask = None
        if any(pads):
            pad_t = torch.tensor(pads, device=dev)  # (P,)
            ar = torch.arange(L, device=dev).reshape(1, L)  # (1, L)
            positions = (ar - pad_t.reshape(P, 1)).clamp(min=0)  # (P, L): real tokens at 0..len-1
            key_ok = ar >= pad_t.reshape(P, 1)  # (P, L): False on padding
            # (P, 1, L, L): causal, not onto padding. A padding query may see itself, so no softmax row is all
            # -inf (that would give NaN, and NaN keys/values poison later layers even where masked).
            causal = torch.ones(L, L, dtype=torch.bool, device=dev).tril()
            eye = torch.eye(L, dtype=torch.bool, device=dev)
            allowed = ((causal & key_ok.unsqueeze(1)) | eye).unsqueeze(1)
            # Masks are additive floats (0 = may attend, -inf = not): SDPA converts a boolean mask to this form
            # inside every layer's call; building it once saves that work (measured on B=16 decode).
            attn_mask = torch.zeros(allowed.shape, dtype=dtype, device=dev).masked_fill_(~allowed, float("-inf"))
        logits = self.forward(ids, positions=positions, kv_cache=tmp, attn_mask=attn_mask, logits_to_keep=1)
        return logits[:, -1]

    def _history(self, rows: list[_Row]):
        """Token history tensors (seen: prompt + output, counts: sampled output), (n, V) each, for ``rows``."""
        V, dev = self.engine.config.vocab_size, self.engine.device
        seen = torch.zeros(len(rows), V, dtype=torch.bool, device=dev)
        counts = torch.zeros(len(rows), V, dtype=torch.float32, device=dev)
        for i, r in enumerate(rows):
            p, o = r.out.prompt_token_ids, r.sample.token_ids
            seen[i, torch.tensor(p + o, dtype=torch.long, device=dev)] = True
            if o:
                counts[i].index_add_(0, torch.tensor(o, device=dev), torch.ones(len(o), device=dev))
        return seen, counts

    def _plan_slots(self, rows_cap: int, ends: list[int], contents: list[int]) -> int:
        """Slots for a new block: enough that no row's slots need moving (``ends``: each row's last slot + 1 as
        laid out), but at most context + 1 (the compiled step's bound; the window then moves left when full)
        and within max_kv_slots; never fewer than the longest row needs (``contents``) + 1."""
        floor = max(contents) + 1
        slots = min(self.engine.config.max_seq_len + 1, max(ends))
        if self.max_kv_slots is not None:
            slots = min(slots, self.max_kv_slots // rows_cap)
        return max(slots, floor)

    def _grow_rows(self, needed: int, slots_floor: int) -> int:
        """Row capacity for ``needed`` rows: by half again of the current capacity (fewer reallocations while
        a server ramps up), within max_rows and max_kv_slots."""
        cap = self.batch.rows_cap if self.batch is not None else 0
        rows = max(needed, cap + cap // 2)
        if self.max_rows is not None:
            rows = min(rows, self.max_rows)
        if self.max_kv_slots is not None:
            rows = min(rows, self.max_kv_slots // slots_floor)
        return max(rows, needed)

    def _join(self, rows: list[_Row], tmp: KVCache, src: torch.Tensor, L: int, first: torch.Tensor, history):
        """Put prefilled rows into the batch: ``tmp`` holds their prompts' keys/values in slots [0, L)
        (row ``src[i]`` of it for new row i, left-padded), ``first`` their first tokens (n,)."""
        V, dev = self.engine.config.vocab_size, self.engine.device
        n = len(rows)
        bt = self.batch
        live = [r for r in bt.rows if r.alive] if bt is not None else []
        contents = [r.max_content for r in live + rows]
        if bt is not None and not live:
            bt.rows, bt.S = [], 0  # nothing to keep: the block is free
        if bt is None or bt.rows_cap < n and not live:
            rows_cap = self._grow_rows(n, max(contents) + 1)
            slots = self._plan_slots(rows_cap, [L - r.prompt_len + r.max_content + 1 for r in rows], contents)
            bt = self.batch = _Batch(self.engine.config, dev, self.engine.kv_dtype, rows_cap, slots)
        if not live:
            bt.S = L
        elif L > bt.S:  # the new prompt is longer than the window: masked slots in front of every live row
            if L + 1 <= bt.slots:
                bt.shift(L - bt.S)
            else:
                bt.resize(bt.rows_cap, self._plan_slots(bt.rows_cap, [L + 1], contents), L, V)
        free = [b for b, r in enumerate(bt.rows) if not r.alive] + list(range(bt.B, bt.rows_cap))
        if len(free) < n or bt.slots < max(contents) + 1:
            rows_cap = self._grow_rows(len(live) + n, max(contents) + 1)
            S = max([bt.S - bt.pad[bt.rows.index(r)].item() for r in live] + [L])
            ends = [S - bt.S + int(bt.pad[bt.rows.index(r)]) + r.max_content + 1 for r in live] + \
                   [S - r.prompt_len + r.max_content + 1 for r in rows]
            bt.resize(rows_cap, self._plan_slots(rows_cap, ends, contents), S, V)
            free = list(range(bt.B, bt.B + n))
        dest = free[:n]
        S = bt.S
        d = torch.tensor(dest, device=dev)
        same = src.numel() == tmp.k.shape[1] and bool((src == torch.arange(n, device=dev)).all())
        ks, vs = (tmp.k, tmp.v) if same else (tmp.k.index_select(1, src), tmp.v.index_select(1, src))
        if dest == list(range(dest[0], dest[0] + n)):  # a run of rows: a plain copy, not an indexed write
            bt.k[:, dest[0]:dest[0] + n, :, S - L:S] = ks
            bt.v[:, dest[0]:dest[0] + n, :, S - L:S] = vs
        else:
            bt.k[:, d, :, S - L:S] = ks
            bt.v[:, d, :, S - L:S] = vs
        for b, r in zip(dest, rows):
            if b < bt.B:
                bt.rows[b] = r
            else:
                bt.rows.append(r)
        plen = torch.tensor([r.prompt_len for r in rows], device=dev)
        bt._pos[d, 0] = plen
        bt._pad[d] = S - plen
        bt._last[d, 0] = first
        if history is not None or bt._seen is not None:
            bt.ensure_history(V, self._history)
            seen, counts = history if history is not None else self._history(rows)
            bt._seen[d], bt._counts[d] = seen, counts
        bt.refresh(V)

    # ------------------------------------------------------------------------------------------------------
    def step(self) -> list[TokenEvent]:
        """One decode pass: feed every live row its last token, sample the next. Returns the new tokens."""
        if torch.is_inference_mode_enabled():  # a generate loop: entering the mode again costs each step
            return self._step()
        with torch.inference_mode():
            return self._step()

    def _step(self) -> list[TokenEvent]:
        if self.done:
            return []
        t0 = time.perf_counter()
        bt = self.batch
        V = self.engine.config.vocab_size
        if bt.compact():
            bt.refresh(V)
        # the masked prefix every live row has (none without a mask: no row has padding)
        m = 0 if bt.mask is None else int(bt.pad[bt.live_index()].min())
        if bt.S + 1 > bt.slots or (m >= 16 and 2 * m >= bt.S):
            bt.shift(-m)  # the block is full (or the window is mostly padding): cut the common prefix
        use_compiled = self.decode is not None and self.engine.compiled_step_pays(bt.B)
        if use_compiled and bt.rows_cap != bt.B:
            bt.resize(None, bt.slots, bt.S, V)  # the compiled step reads the cache as one contiguous block
        if use_compiled:
            logits = self.decode(bt.last, bt.pos, bt.pad, bt.cache)  # (B, V): compiled, builds its own mask
        else:
            S = bt.S + 1
            mask = bt.mask[:, :, :, :S] if bt.mask is not None else None  # (B, 1, 1, S) view, nothing rebuilt
            logits = self.forward(bt.last, positions=bt.pos, kv_cache=bt.cache, attn_mask=mask)[:, -1]  # (B, V)
        bt.S = bt.cache.length
        bt.pos += 1
        events = self._emit(bt, logits)
        self._sync()
        self.stats.decode_seconds += time.perf_counter() - t0
        self.stats.decode_tokens += len(events)
        self.stats.decode_steps += 1
        return events

    def _allowed(self, rows: list[_Row]) -> torch.Tensor | None:
        """(n, V) bool of the tokens the rows' constraints allow next, or None when no live row has one. A
        constraint that allows nothing gets the row's stop ids (it ends), or everything if it has none."""
        if not any(r.constraint is not None and r.alive for r in rows):
            return None
        V, dev = self.engine.config.vocab_size, self.engine.device
        allowed = torch.ones(len(rows), V, dtype=torch.bool, device=dev)
        for b, r in enumerate(rows):
            if r.constraint is None or not r.alive:
                continue
            a = r.constraint.allowed()
            if a is None:
                continue
            a = a.to(device=dev, dtype=torch.bool)[:V]
            if not bool(a.any()):
                a = torch.zeros(V, dtype=torch.bool, device=dev)
                a[[t for t in r.stops if t < V]] = True
                if not r.stops:
                    a[:] = True
            allowed[b, : a.shape[0]] = a
            allowed[b, a.shape[0]:] = False
        return allowed

    def _choose(self, rows: list[_Row], logits: torch.Tensor, sampler: SamplingBatch, seen, counts,
                as_tensor: bool = False):
        """Sample one token per row from logits (n, V): (tokens, logprobs, top alternatives) as lists (the
        tokens as an (n,) tensor with ``as_tensor``)."""
        processed = sampler.process(logits, seen, counts, self._allowed(rows))
        tokens = sampler.choose(processed)  # (n,)
        n = len(rows)
        lps, tops = [None] * n, [None] * n
        ks = [p.logprobs for p in sampler.params]  # per row: None, 0 or top-k
        if any(k is not None for k in ks):
            modes = [p.logprobs_mode for p in sampler.params]
            src = logits.float()
            if "processed" in modes:
                # Greedy rows' processed logits are after bias and penalties only (no temperature or masks),
                # so their "processed" distribution is not a point mass. A batch mixing modes picks per row.
                use = torch.tensor([m == "processed" for m in modes], device=logits.device).reshape(-1, 1)
                src = torch.where(use, processed, src)
            logp = torch.log_softmax(src, dim=-1)  # (n, V)
            lp_list = logp.gather(1, tokens.reshape(-1, 1)).squeeze(1).tolist()
            max_top = min(max(k or 0 for k in ks), logp.shape[-1])
            if max_top:
                top = torch.topk(logp, max_top, dim=-1)
                top_ids, top_lps = top.indices.tolist(), top.values.tolist()
            for b, k in enumerate(ks):
                if k is not None:
                    lps[b] = lp_list[b]
                    if k:
                        tops[b] = list(zip(top_ids[b][:k], top_lps[b][:k]))
        if seen is not None:
            seen.scatter_(1, tokens.reshape(-1, 1), True)
            counts.scatter_add_(1, tokens.reshape(-1, 1), torch.ones(n, 1, device=tokens.device))
        return (tokens if as_tensor else tokens.tolist()), lps, tops

    def _record(self, row: _Row, tok: int, lp=None, top=None, forced: bool = False) -> TokenEvent:
        """Append a token to a row's sample; decide whether the row ends here. Returns its event."""
        s = row.sample
        s.token_ids.append(tok)
        ev = TokenEvent(row.out.prompt_index, s.index, tok, len(s.token_ids) - 1, forced=forced)
        if s.logprobs is not None:
            ev.logprob = lp
            s.logprobs.append(lp)
            if s.top_logprobs is not None:
                ev.top_logprobs = top
                s.top_logprobs.append(top)
        if forced:
            row.forced += 1
        else:
            row.sampled += 1
            if row.constraint is not None:
                row.constraint.advance(tok)
        if not forced and tok in row.stops:
            ev.finish_reason = "stop"
        elif row.prompt_len + len(s.token_ids) >= row.ctx or (not forced and row.sampled >= row.params.max_new_tokens):
            ev.finish_reason = "length"
        elif not forced and row.constraint is not None and row.constraint.done():
            ev.finish_reason = "stop"
        if ev.finish_reason:
            self._end(row, ev.finish_reason)
        return ev

    def _end(self, row: _Row, reason: str) -> None:
        row.alive = False
        row.sample.finish_reason = reason
        if not self.keep_finished and row.out.finished:
            self._requests.pop(row.out.prompt_index, None)  # retired: the caller has had its last event

    def _emit(self, bt: _Batch, logits: torch.Tensor) -> list[TokenEvent]:
        """Sample from logits (B, V) of the batch's rows, record the tokens, retire finished rows."""
        chosen, lps, tops = self._choose(bt.rows, logits, bt.sampler, bt.seen, bt.counts, as_tensor=True)
        bt.last.copy_(chosen.reshape(-1, 1))  # (B, 1): the next input
        tokens = chosen.tolist()
        events = []
        for b, r in enumerate(bt.rows):
            if not r.alive:
                continue  # finished earlier, waiting for the next compaction
            events.append(self._record(r, tokens[b], lps[b], tops[b]))
            if not r.alive:
                bt.pos[b, 0] = 0  # riding along dead must not index past the RoPE table
        return events

    def _find(self, prompt_index: int, sample_index: int) -> int | None:
        bt = self.batch
        for b, r in enumerate(bt.rows if bt is not None else []):
            if r.alive and r.key == (prompt_index, sample_index):
                return b
        return None

    def finish(self, prompt_index: int, sample_index: int, reason: str = "stop") -> bool:
        """End one sample now, from outside (a stop string matched at the text edge, a client went away).
        Its row stops producing tokens at once (and leaves the batch at a later compaction). Returns False
        if it had already finished."""
        b = self._find(prompt_index, sample_index)
        if b is None:
            return False
        bt = self.batch
        with torch.inference_mode():
            bt.pos[b, 0] = 0
        self._end(bt.rows[b], reason)
        return True

    def cancel(self, prompt_index: int) -> None:
        """End every sample of a request (its client went away) and retire it."""
        self.retire(prompt_index)

    # ------------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def force(self, prompt_index: int, sample_index: int, token_ids: Sequence[int]) -> list[TokenEvent]:
        """Write ``token_ids`` into a live sample after its newest token, as if it had produced them (a tool's
        result, a prefix a caller insists on), in one forward pass over the row; then sample the token after
        them. Returns their events (``forced=True``, no logprob) and the sampled one's. Forced tokens count
        toward the context but not toward ``max_new_tokens``, and its constraint does not see them. Tokens
        past the context are dropped and the row ends with ``"length"``."""
        cfg, dev, V = self.engine.config, self.engine.device, self.engine.config.vocab_size
        b = self._find(prompt_index, sample_index)
        if b is None:
            raise LlmlabError(f"sample {sample_index} of request {prompt_index} is not generating")
        try:
            ids = [int(t) for t in token_ids]
        except (TypeError, ValueError):
            raise LlmlabError("forced tokens must be integer token ids") from None
        if any(not 0 <= t < V for t in ids):
            raise LlmlabError(f"forced token id outside the vocabulary (0..{V - 1})")
        bt = self.batch
        row = bt.rows[b]
        t0 = time.perf_counter()
        c = bt.S - int(bt.pad[b])  # slots this row fills now: prompt + output - 1
        last = int(bt.last[b, 0])
        events = []
        for t in ids:
            events.append(self._record(row, t, forced=True))
            if not row.alive:
                bt.pos[b, 0] = 0
                return events
        if not ids:
            return events
        # One pass over [last, *ids] on a copy of the row's slots, then the row goes back into the batch.
        k = len(ids)
        tmp = KVCache(cfg, 1, c + k + 1, dev, self.engine.kv_dtype)
        tmp.k[:, 0, :, :c] = bt.k[:, b, :, bt.S - c:bt.S]
        tmp.v[:, 0, :, :c] = bt.v[:, b, :, bt.S - c:bt.S]
        tmp.length = c
        x = torch.tensor([[last] + ids], dtype=torch.long, device=dev)  # (1, k + 1)
        positions = int(bt.pos[b, 0]) + torch.arange(k + 1, device=dev).reshape(1, -1)  # (1, k + 1)
        self.forward = self.engine.forward_fn()
        logits = self.forward(x, positions=positions, kv_cache=tmp, logits_to_keep=1)[:, -1]  # (1, V)
        c2 = c + k + 1
        live = self._live_rows()
        contents = [r.max_content for r in live]
        if bt.slots < max(contents) + 1 or c2 + 1 > bt.slots:  # a larger block (the row's slots are copied in below)
            S = max([bt.S - int(bt.pad[bt.rows.index(r)]) for r in live if r is not row] + [c2])
            bt.resize(bt.rows_cap, self._plan_slots(bt.rows_cap, [max(contents) + 1], contents), S, V)
        elif c2 > bt.S:  # the row is now longer than the window: masked slots in front of the others
            bt.shift(c2 - bt.S)
        b = bt.rows.index(row)  # (a resize compacts the rows)
        S = bt.S
        bt.k[:, b, :, S - c2:S] = tmp.k[:, 0, :, :c2]
        bt.v[:, b, :, S - c2:S] = tmp.v[:, 0, :, :c2]
        bt._pad[b] = S - c2
        bt._pos[b, 0] += k + 1
        if bt._seen is not None:
            bt._seen[b, torch.tensor(ids, device=dev)] = True
        bt.refresh(V)
        sampler = SamplingBatch([row.params], V, dev, [row.generator])
        seen = counts = None
        if bt.seen is not None:
            seen, counts = bt.seen[b:b + 1], bt.counts[b:b + 1]  # views: the draw's update lands in the batch
        tokens, lps, tops = self._choose([row], logits, sampler, seen, counts)
        events.append(self._record(row, tokens[0], lps[0], tops[0]))
        bt.last[b, 0] = tokens[0]
        if not row.alive:
            bt.pos[b, 0] = 0
        self.stats.prefill_tokens += k + 1
        self.stats.prefill_seconds += time.perf_counter() - t0
        return events
