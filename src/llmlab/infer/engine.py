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
    outputs = gen.outputs()

How it works. ``start`` left-pads the prompts to one length and runs one prefill pass over all of them
(padding is masked out and each row gets its own RoPE positions, so a row's numbers match running it alone).
Then every ``step`` feeds each live row its last token and appends one slot to the shared KV cache. ``n``
samples per prompt share the prompt's prefill: the cache rows are repeated after it. A row stops at one of
its stop ids (``finish_reason="stop"``, the stop id is kept in ``token_ids``), after ``max_new_tokens``, or
when prompt + output fill the model's context (both ``"length"``). Finished rows are dropped from the batch
(``KVCache.keep_rows``) so they stop costing work.

``add`` prefills the new prompts on their own and merges their rows into the running batch (the shorter side
gets masked cache slots in front, so all rows keep writing at one position). Sampling parameters are per
prompt and may differ within a batch; a seeded sample draws from its own ``torch.Generator``, so its output
does not depend on what else shares the batch. ``logprobs`` are of the model's raw distribution by default
(``logprobs_mode="processed"``: of the distribution actually sampled from, after temperature and masks).

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
from llmlab.infer.sampling import SamplingBatch, SamplingParams, derived_seed
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


@dataclass
class Sample:
    """One finished (or, mid-generation, growing) sequence."""

    index: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    top_logprobs: list[list[tuple[int, float]]] | None = None
    finish_reason: str | None = None


@dataclass
class RequestOutput:
    """Everything generated for one prompt: its ``n`` samples."""

    prompt_index: int
    prompt_token_ids: list[int]
    samples: list[Sample]
    truncated: int = 0  # prompt tokens cut off by truncate="left"


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


class Engine:
    """Runs a ``GPT`` for generation. ``eos_token_ids`` stop every row unless ``ignore_eos``.

    With ``fused=True`` (the default) the forward pass runs on a fused copy of the weights
    (``infer/fused.py``: fewer, larger operator calls, ~2x faster decode on a CPU). The copy is rebuilt
    whenever a parameter has changed since it was made (checked at every ``start``/``add``), so training
    updates are seen by the next generation (RL generates with the current policy). ``fused=False``, or a
    model class that overrides ``forward``, runs the model's own forward and holds no copy.

    ``compile=True`` runs the decode steps (one new token per row) through an ahead-of-time compiled step
    (``infer/compiled.py``: one C++ call per step; the first use of a model shape compiles it, ~30-60 s, then
    it loads from ``compile_dir``). Prefill stays eager, and so do batched steps of large models, whose matmuls
    the eager forward runs through oneDNN faster than the compiled step's GEMMs (``compiled_step_pays``). It
    needs the fused path."""

    def __init__(self, model: torch.nn.Module, eos_token_ids: Sequence[int] = (), *, fused: bool = True,
                 compile: bool = False, compile_dir=None, log=None):
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
        sends most of its matmul work through oneDNN (a large model's batch, see infer/fused.py)."""
        fw = self._fused_weights
        return fw is None or fw.onednn_share(rows) < 0.5

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
    ) -> "Generation":
        """Prefill the prompts and sample each row's first token; returns the generation to ``step``."""
        return Generation(self, prompts, params, truncate=truncate)

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        truncate: str | None = None,
    ) -> list[RequestOutput]:
        """Run to completion; one ``RequestOutput`` per prompt, each with its ``n`` samples."""
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


class _Batch:
    """The rows of one forward pass and their tensors, all in batch order (``rows[b]`` is row ``b``'s id).

    Every row's masked cache slots form a prefix ``[0, pad[b])`` (left padding, plus slots added in front when
    batches of different lengths merge), so the decode mask is built from ``pad`` alone.

    A finished row is first only marked dead (``alive[b] = False``; it rides along, its tokens ignored) and the
    batch is compacted once a quarter of it is dead: each compaction copies the whole KV cache, so dropping
    rows one at a time would cost O(B) cache copies for B rows finishing at different steps (RL batches)."""

    def __init__(self, cache: KVCache, rows: list[int], pos, pad, seen, counts, sampler: SamplingBatch):
        self.cache = cache
        self.rows = rows
        self.alive = [True] * len(rows)
        self.pos = pos  # (B, 1) long: position of the next fed token of each row
        self.pad = pad  # (B,) long: masked slots at the front of each row
        self.seen, self.counts = seen, counts  # (B, V) bool / float32 token history, when penalties need it
        self.sampler = sampler
        self.last = None  # (B, 1) long: each row's newest token, the next step's input
        self.mask = None  # (B, 1, 1, max_len) additive float mask, or None when no row has padding
        self.rebuild_mask()

    @property
    def live(self) -> list[int]:
        return [r for r, a in zip(self.rows, self.alive) if a]

    def retire(self, b: int) -> None:
        """Mark batch position b finished. Its position is reset to 0 so that riding along can never index
        past the RoPE table (a row that stopped at the context limit would)."""
        self.alive[b] = False
        self.pos[b, 0] = 0

    def compact(self, force: bool = False) -> None:
        """Drop the dead rows when they are a quarter of the batch (or ``force``)."""
        dead = len(self.alive) - sum(self.alive)
        if dead and (force or 4 * dead >= len(self.alive)):
            self.keep([b for b, a in enumerate(self.alive) if a])

    def rebuild_mask(self) -> None:
        if not bool(self.pad.any()):
            self.mask = None  # no padding anywhere: attention needs no mask
            return
        slots = torch.arange(self.cache.max_len, device=self.pad.device).reshape(1, -1)  # (1, M)
        masked = slots < self.pad.reshape(-1, 1)  # (B, M)
        self.mask = torch.zeros(masked.shape, dtype=self.cache.k.dtype, device=self.pad.device)
        self.mask = self.mask.masked_fill_(masked, float("-inf")).reshape(len(self.rows), 1, 1, -1)

    def keep(self, keep: list[int]) -> None:
        """Keep batch positions ``keep`` (in order) in the cache and every per-row tensor."""
        self.rows = [self.rows[b] for b in keep]
        self.alive = [self.alive[b] for b in keep]
        if not keep:
            return
        rows = torch.tensor(keep, dtype=torch.long, device=self.pos.device)
        self.cache.keep_rows(rows)
        self.pos, self.pad = self.pos.index_select(0, rows), self.pad.index_select(0, rows)
        self.sampler.select(rows, keep)
        if self.last is not None:
            self.last = self.last.index_select(0, rows)
        if self.seen is not None:
            self.seen, self.counts = self.seen.index_select(0, rows), self.counts.index_select(0, rows)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, rows)
            if not bool(self.pad.any()):
                self.mask = None  # the rows left have no padding: decode without a mask


class Generation:
    """The state of a batched generation: KV cache, live rows and their per-row tensors.

    ``step()`` runs one decode pass and returns the new tokens as events; ``add()`` lets new prompts join
    between steps (continuous batching: their prefill runs on its own, then their rows are merged into the
    running batch); ``finish()`` ends a sample from outside. Rows are numbered in the order they were added
    (prompt, then sample); ``self.live`` lists, in batch order, the rows still generating."""

    def __init__(self, engine: Engine, prompts, params, *, truncate: str | None):
        self.engine = engine
        self.forward = None  # GPT.forward's contract (see Engine); set by every add(), the first one below
        self.decode = None  # the compiled decode step when the engine compiles (set with forward)
        self.stats = GenerationStats()
        self.outputs_: list[RequestOutput] = []
        # Row bookkeeping (Python side): one row per sample.
        self.row_prompt: list[int] = []
        self.row_sample: list[int] = []
        self.row_budget: list[int] = []  # how many tokens this row may produce
        self.row_stops: list[frozenset[int]] = []
        self.row_params: list[SamplingParams] = []
        self.generated: list[int] = []
        self.batch: _Batch | None = None
        # One generator shared by the rows without a seed, seeded from the OS.
        self._shared_gen = torch.Generator(device=engine.device)
        self._shared_gen.seed()
        self.first_events = self.add(prompts, params, truncate=truncate)

    @property
    def live(self) -> list[int]:
        return self.batch.live if self.batch is not None else []

    @property
    def cache(self) -> KVCache:
        return self.batch.cache

    @property
    def done(self) -> bool:
        return self.batch is None or not any(self.batch.alive)

    def _sync(self) -> None:
        if self.engine.device.type == "cuda":
            torch.cuda.synchronize(self.engine.device)

    # ------------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def add(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        truncate: str | None = None,
    ) -> list[TokenEvent]:
        """Prefill more prompts and merge their rows into the running batch; returns their first tokens.
        The new prompts' ``prompt_index`` continue after the earlier ones (see ``outputs()``)."""
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
        base = len(self.outputs_)
        checked = [engine._check_prompt(list(p), truncate, base + i) for i, p in enumerate(prompts)]
        lens = [len(ids) for ids, _ in checked]
        P, L = len(prompts), max(lens)

        rows, gens = [], []
        for i, ((ids, cut), p) in enumerate(zip(checked, params)):
            out = RequestOutput(base + i, ids, [Sample(j) for j in range(p.n)], truncated=cut)
            self.outputs_.append(out)
            budget = min(p.max_new_tokens, cfg.max_seq_len - lens[i])  # prompt + output <= context
            stops = frozenset(p.stop_token_ids) | (frozenset() if p.ignore_eos else frozenset(engine.eos_token_ids))
            for j in range(p.n):
                rows.append(len(self.row_prompt))
                self.row_prompt.append(base + i)
                self.row_sample.append(j)
                self.row_budget.append(budget)
                self.row_stops.append(stops)
                self.row_params.append(p)
                self.generated.append(0)
                if p.logprobs is not None:
                    out.samples[j].logprobs = []
                    out.samples[j].top_logprobs = [] if p.logprobs > 0 else None
                if p.seed is None:  # seeded rows get their own generator, the rest share one
                    gens.append(self._shared_gen)
                else:
                    gens.append(torch.Generator(device=dev).manual_seed(derived_seed(p.seed, j)))
        sampler = SamplingBatch([self.row_params[r] for r in rows], cfg.vocab_size, dev, gens)

        # Cache: L prompt slots (left-padded) + the slots for fed-back tokens (the last token is never fed).
        slots = L + max(self.row_budget[r] for r in rows) - 1
        pads = [L - n for n in lens]
        cache = KVCache(cfg, P, slots, dev, engine.dtype)
        ids = torch.tensor([[0] * pad + list(x) for pad, (x, _) in zip(pads, checked)], dtype=torch.long, device=dev)
        pad_t = torch.tensor(pads, device=dev)  # (P,)
        positions = attn_mask = None
        if any(pads):
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
            attn_mask = torch.zeros(allowed.shape, dtype=engine.dtype, device=dev).masked_fill_(~allowed, float("-inf"))
        self.forward = engine.forward_fn()  # the weights may have changed since the last add
        self.decode = engine.decode_fn()  # (a first compile is not prefill time)
        self._sync()
        t0 = time.perf_counter()
        logits = self.forward(ids, positions=positions, kv_cache=cache, attn_mask=attn_mask, logits_to_keep=1)[:, -1]
        pos = torch.tensor(lens, device=dev).reshape(P, 1)  # (P, 1)
        seen = counts = None
        if sampler.needs_history:
            seen, counts = self._history(prompts=[list(x) for x, _ in checked])
        # n samples per prompt: repeat each prompt's rows (cache, logits, per-row tensors) after the prefill.
        rep = torch.tensor([self.row_prompt[r] - base for r in rows], device=dev)  # (R,): prompt of each row
        if len(rows) != P:
            if all(p.n == params[0].n for p in params):
                cache.repeat_rows(params[0].n)
            else:
                cache.keep_rows(rep)
            logits, pos, pad_t = logits.index_select(0, rep), pos.index_select(0, rep), pad_t.index_select(0, rep)
            if seen is not None:
                seen, counts = seen.index_select(0, rep), counts.index_select(0, rep)
        new = _Batch(cache, rows, pos, pad_t, seen, counts, sampler)
        events = self._emit(new, logits)
        if new.live:
            self.batch = new if not self.live else self._merge(self.batch, new)
        elif self.batch is None:
            self.batch = new  # everything finished at its first token
        self._sync()
        self.stats.prefill_tokens += sum(lens)
        self.stats.prefill_seconds += time.perf_counter() - t0
        return events

    def _history(self, rows: list[int] | None = None, prompts: list[list[int]] | None = None):
        """Token history tensors (seen: prompt + output, counts: output), (n, V) each, for the live ``rows``
        or for fresh ``prompts`` (nothing generated yet)."""
        V, dev = self.engine.config.vocab_size, self.engine.device
        lists = prompts if prompts is not None else [
            self.outputs_[self.row_prompt[r]].prompt_token_ids for r in rows]
        outs = [[]] * len(lists) if prompts is not None else [
            self.outputs_[self.row_prompt[r]].samples[self.row_sample[r]].token_ids for r in rows]
        seen = torch.zeros(len(lists), V, dtype=torch.bool, device=dev)
        counts = torch.zeros(len(lists), V, dtype=torch.float32, device=dev)
        for i, (p, o) in enumerate(zip(lists, outs)):
            seen[i, torch.tensor(p + o, dtype=torch.long, device=dev)] = True
            if o:
                counts[i].index_add_(0, torch.tensor(o, device=dev), torch.ones(len(o), device=dev))
        return seen, counts

    def _merge(self, a: _Batch, b: _Batch) -> _Batch:
        """One batch from two: both caches are copied into a new one whose rows end at the same slot (the
        shorter batch gets masked slots in front), long enough for every row's remaining budget."""
        a.compact(force=True)
        b.compact(force=True)
        S = max(a.cache.length, b.cache.length)
        remaining = max(self.row_budget[r] - self.generated[r] for r in a.rows + b.rows)
        cfg, dev = self.engine.config, self.engine.device
        cache = KVCache(cfg, len(a.rows) + len(b.rows), S + remaining, dev, a.cache.k.dtype)
        row0 = 0
        for x in (a, b):
            n, d, length = len(x.rows), S - x.cache.length, x.cache.length
            cache.k[:, row0 : row0 + n, :, d:S] = x.cache.k[:, :, :, :length]
            cache.v[:, row0 : row0 + n, :, d:S] = x.cache.v[:, :, :, :length]
            row0 += n
        cache.length = S
        pad = torch.cat([a.pad + (S - a.cache.length), b.pad + (S - b.cache.length)])
        seen = counts = None
        if a.seen is not None or b.seen is not None:
            ha = (a.seen, a.counts) if a.seen is not None else self._history(a.rows)
            hb = (b.seen, b.counts) if b.seen is not None else self._history(b.rows)
            seen, counts = torch.cat([ha[0], hb[0]]), torch.cat([ha[1], hb[1]])
        live = a.rows + b.rows
        sampler = SamplingBatch([self.row_params[r] for r in live], cfg.vocab_size, dev,
                                a.sampler.generators + b.sampler.generators)
        merged = _Batch(cache, live, torch.cat([a.pos, b.pos]), pad, seen, counts, sampler)
        merged.last = torch.cat([a.last, b.last])
        return merged

    @torch.inference_mode()
    def step(self) -> list[TokenEvent]:
        """One decode pass: feed every live row its last token, sample the next. Returns the new tokens."""
        if self.done:
            return []
        t0 = time.perf_counter()
        bt = self.batch
        if self.decode is not None and self.engine.compiled_step_pays(len(bt.last)):
            logits = self.decode(bt.last, bt.pos, bt.pad, bt.cache)  # (B, V): compiled, builds its own mask
        else:
            S = bt.cache.length + 1
            mask = bt.mask[:, :, :, :S] if bt.mask is not None else None  # (B, 1, 1, S) view, nothing rebuilt
            logits = self.forward(bt.last, positions=bt.pos, kv_cache=bt.cache, attn_mask=mask)[:, -1]  # (B, V)
        bt.pos += 1
        events = self._emit(bt, logits)
        self._sync()
        self.stats.decode_seconds += time.perf_counter() - t0
        self.stats.decode_tokens += len(events)
        self.stats.decode_steps += 1
        return events

    def _emit(self, bt: _Batch, logits: torch.Tensor) -> list[TokenEvent]:
        """Sample from logits (B, V) of the batch's rows, record the tokens, drop finished rows."""
        sampler = bt.sampler
        processed = sampler.process(logits, bt.seen, bt.counts)
        tokens = sampler.choose(processed)  # (B,)
        lp_list = top_ids = top_lps = None
        ks = [p.logprobs for p in sampler.params]  # per row: None, 0 or top-k
        if any(k is not None for k in ks):
            modes = [p.logprobs_mode for p in sampler.params]
            src = logits.float()
            if "processed" in modes:
                # Greedy rows' processed logits are after bias and penalties only (no temperature or masks),
                # so their "processed" distribution is not a point mass. A batch mixing modes picks per row.
                use = torch.tensor([m == "processed" for m in modes], device=logits.device).reshape(-1, 1)
                src = torch.where(use, processed, src)
            logp = torch.log_softmax(src, dim=-1)  # (B, V)
            lp_list = logp.gather(1, tokens.reshape(-1, 1)).squeeze(1).tolist()
            max_top = max(k or 0 for k in ks)
            if max_top:
                top = torch.topk(logp, max_top, dim=-1)
                top_ids, top_lps = top.indices.tolist(), top.values.tolist()
        if bt.seen is not None:
            bt.seen.scatter_(1, tokens.reshape(-1, 1), True)
            bt.counts.scatter_add_(1, tokens.reshape(-1, 1), torch.ones(len(ks), 1, device=tokens.device))
        token_list = tokens.tolist()
        events = []
        for b, (r, tok) in enumerate(zip(bt.rows, token_list)):
            if not bt.alive[b]:
                continue  # finished earlier, waiting for the next compaction
            out = self.outputs_[self.row_prompt[r]].samples[self.row_sample[r]]
            out.token_ids.append(tok)
            self.generated[r] += 1
            ev = TokenEvent(self.row_prompt[r], self.row_sample[r], tok, self.generated[r] - 1)
            k = ks[b]
            if k is not None:
                ev.logprob = lp_list[b]
                out.logprobs.append(ev.logprob)
                if k:
                    ev.top_logprobs = list(zip(top_ids[b][:k], top_lps[b][:k]))
                    out.top_logprobs.append(ev.top_logprobs)
            if tok in self.row_stops[r]:
                ev.finish_reason = "stop"
            elif self.generated[r] >= self.row_budget[r]:
                ev.finish_reason = "length"
            if ev.finish_reason:
                out.finish_reason = ev.finish_reason
                bt.retire(b)
            events.append(ev)
        bt.last = tokens.reshape(-1, 1)  # (B, 1): the next step's input
        bt.compact()
        return events

    def finish(self, prompt_index: int, sample_index: int, reason: str = "stop") -> bool:
        """End one sample now, from outside (a stop string matched at the text edge, a client went away).
        Its row stops producing tokens at once (and leaves the batch at the next compaction). Returns False
        if it had already finished."""
        bt = self.batch
        for b, r in enumerate(bt.rows if bt is not None else []):
            if bt.alive[b] and self.row_prompt[r] == prompt_index and self.row_sample[r] == sample_index:
                self.outputs_[prompt_index].samples[sample_index].finish_reason = reason
                with torch.inference_mode():
                    bt.retire(b)
                    bt.compact()
                return True
        return False

    def outputs(self) -> list[RequestOutput]:
        """One ``RequestOutput`` per prompt (complete once ``done``)."""
        return self.outputs_
