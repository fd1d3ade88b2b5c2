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
    outputs = gen.outputs()

How it works. ``start`` left-pads the prompts to one length and runs one prefill pass over all of them
(padding is masked out and each row gets its own RoPE positions, so a row's numbers match running it alone).
Then every ``step`` feeds each live row its last token and appends one slot to the shared KV cache. ``n``
samples per prompt share the prompt's prefill: the cache rows are repeated after it. A row stops at one of
its stop ids (``finish_reason="stop"``, the stop id is kept in ``token_ids``), after ``max_new_tokens``, or
when prompt + output fill the model's context (both ``"length"``). Finished rows are dropped from the batch
(``KVCache.keep_rows``) so they stop costing work.

Context policy: a prompt must leave room for one new token (``len(prompt) < max_seq_len``); a longer one is
refused with ``LlmlabError``, or, with ``truncate="left"``, cut to its last ``max_seq_len - 1`` tokens.
Greedy output is token-for-token the output of re-running the full sequence each step (tests/infer checks).
"""

from __future__ import annotations

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
    """Runs a ``GPT`` for generation. Holds no copy of the weights: training updates are seen immediately
    (RL generates with the current policy). ``eos_token_ids`` stop every row unless ``ignore_eos``."""

    def __init__(self, model: torch.nn.Module, eos_token_ids: Sequence[int] = ()):
        from llmlab.model.checkpoint import unwrap

        self.model = unwrap(model)
        self.config = self.model.config
        self.eos_token_ids = tuple(int(t) for t in eos_token_ids)

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
        return self.model(x, logits_to_keep=1)[0, -1].float()

    def _check_prompt(self, ids: list[int], truncate: str | None, index: int) -> tuple[list[int], int]:
        """Validate one prompt; apply the truncation policy. Returns (ids, number of tokens cut)."""
        ctx, V = self.config.max_seq_len, self.config.vocab_size
        if truncate not in (None, "left"):
            raise LlmlabError(f"unknown truncate policy {truncate!r}; use 'left' or none")
        if not ids:
            raise LlmlabError(f"prompt {index} is empty: the engine needs at least one token (e.g. <|bos|>)")
        bad = [t for t in ids if not (isinstance(t, int) and 0 <= t < V)]
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


class Generation:
    """The state of one batched generation: KV cache, live rows and their per-row tensors.

    ``step()`` runs one decode pass and returns the new tokens as events. Rows live in ``self.rows`` (one per
    sample, in prompt-then-sample order); ``self.live`` lists, in batch order, the rows still generating."""

    def __init__(self, engine: Engine, prompts, params, *, truncate: str | None):
        self.engine = engine
        model, cfg, dev = engine.model, engine.config, engine.device
        self.model = model
        if params is None:
            params = SamplingParams()
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        if len(params) != len(prompts):
            raise LlmlabError(f"got {len(prompts)} prompts but {len(params)} sampling parameter sets")
        if not prompts:
            raise LlmlabError("no prompts to generate from")
        self.stats = GenerationStats()

        checked = [engine._check_prompt(list(p), truncate, i) for i, p in enumerate(prompts)]
        self.outputs_ = [
            RequestOutput(i, ids, [Sample(j) for j in range(p.n)], truncated=cut)
            for i, ((ids, cut), p) in enumerate(zip(checked, params))
        ]
        lens = [len(ids) for ids, _ in checked]
        P, L = len(prompts), max(lens)
        # Row bookkeeping (Python side): one row per sample.
        self.row_prompt: list[int] = []
        self.row_sample: list[int] = []
        self.row_budget: list[int] = []  # how many tokens this row may produce
        self.row_stops: list[frozenset[int]] = []
        self.row_logprobs: list[int | None] = []
        self.row_params: list[SamplingParams] = []
        for i, p in enumerate(params):
            budget = min(p.max_new_tokens, cfg.max_seq_len - lens[i])  # prompt + output <= context
            stops = frozenset(p.stop_token_ids) | (frozenset() if p.ignore_eos else frozenset(engine.eos_token_ids))
            for j in range(p.n):
                self.row_prompt.append(i)
                self.row_sample.append(j)
                self.row_budget.append(budget)
                self.row_stops.append(stops)
                self.row_logprobs.append(p.logprobs)
                self.row_params.append(p)
                if p.logprobs is not None:
                    s = self.outputs_[i].samples[j]
                    s.logprobs = []
                    s.top_logprobs = [] if p.logprobs > 0 else None
        R = len(self.row_prompt)
        self.generated: list[int] = [0] * R
        self.max_top = max((k or 0) for k in self.row_logprobs)
        self.want_logprobs = any(k is not None for k in self.row_logprobs)
        self.processed_logprobs = any(p.logprobs is not None and p.logprobs_mode == "processed" for p in params)

        # Generators: a seeded row gets its own; unseeded rows share one seeded from the OS.
        shared = torch.Generator(device=dev)
        shared.seed()
        gens = []
        for r in range(R):
            p = self.row_params[r]
            if p.seed is None:
                gens.append(shared)
            else:
                g = torch.Generator(device=dev)
                g.manual_seed(derived_seed(p.seed, self.row_sample[r]))
                gens.append(g)
        self.sampler = SamplingBatch(self.row_params, cfg.vocab_size, dev, gens)

        # Cache: L prompt slots (left-padded) + the slots for fed-back tokens (the last token is never fed).
        slots = L + max(self.row_budget) - 1
        pads = [L - n for n in lens]
        self.padded = any(pads)
        with torch.inference_mode():
            self.cache = KVCache(cfg, P, slots, dev, engine.dtype)
            ids = torch.tensor([[0] * pad + list(x) for pad, (x, _) in zip(pads, checked)], dtype=torch.long, device=dev)
            pad_t = torch.tensor(pads, device=dev).reshape(P, 1)  # (P, 1)
            ar = torch.arange(L, device=dev).reshape(1, L)  # (1, L)
            positions = attn_mask = None
            if self.padded:
                positions = (ar - pad_t).clamp(min=0)  # (P, L): real tokens at 0..len-1
                key_ok = ar >= pad_t  # (P, L): False on padding
                # (P, 1, L, L): causal, not onto padding. A padding query may see itself, so no softmax row is
                # all -inf (that would give NaN, and NaN keys/values poison later layers even when masked).
                causal = torch.ones(L, L, dtype=torch.bool, device=dev).tril()
                eye = torch.eye(L, dtype=torch.bool, device=dev)
                allowed = ((causal & key_ok.unsqueeze(1)) | eye).unsqueeze(1)
                # Masks are additive floats (0 = may attend, -inf = not): SDPA converts a boolean mask to this
                # form inside every layer's call; building it once saves that work (measured: B=16 decode).
                attn_mask = torch.zeros(allowed.shape, dtype=engine.dtype, device=dev).masked_fill_(~allowed, float("-inf"))
                # The decode-time mask: (P, 1, 1, slots); padding -inf, every later slot 0.
                self.mask = torch.zeros(P, 1, 1, slots, dtype=engine.dtype, device=dev)
                self.mask[:, 0, 0, :L].masked_fill_(~key_ok, float("-inf"))
                self.pad = pad_t.reshape(P)
            self._sync()
            t0 = time.perf_counter()
            logits = model(ids, positions=positions, kv_cache=self.cache, attn_mask=attn_mask, logits_to_keep=1)
            logits = logits[:, -1]  # (P, V)
            self.pos = torch.tensor(lens, device=dev).reshape(P, 1)  # (P, 1): position of the next fed token
            # Token history for penalties: seen (prompt + output) and output counts, (rows, V).
            self.seen = self.counts = None
            if self.sampler.needs_history:
                V = cfg.vocab_size
                self.seen = torch.zeros(P, V, dtype=torch.bool, device=dev)
                for i, (x, _) in enumerate(checked):  # the real prompt tokens, not the padding
                    self.seen[i, torch.tensor(x, device=dev)] = True
                self.counts = torch.zeros(P, V, dtype=torch.float32, device=dev)
            # n samples per prompt: repeat the prompt's rows (cache, logits, per-row tensors).
            rep = torch.tensor([self.row_prompt], device=dev).reshape(-1)  # (R,): prompt index of each row
            if R != P:
                if all(p.n == params[0].n for p in params):
                    self.cache.repeat_rows(params[0].n)
                else:
                    self.cache.keep_rows(rep)
                logits = logits.index_select(0, rep)
                self.pos = self.pos.index_select(0, rep)
                if self.padded:
                    self.mask, self.pad = self.mask.index_select(0, rep), self.pad.index_select(0, rep)
                if self.seen is not None:
                    self.seen, self.counts = self.seen.index_select(0, rep), self.counts.index_select(0, rep)
            self.live: list[int] = list(range(R))
            self.first_events = self._emit(logits)
            self._sync()
            self.stats.prefill_tokens = sum(lens)
            self.stats.prefill_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return not self.live

    def _sync(self) -> None:
        if self.engine.device.type == "cuda":
            torch.cuda.synchronize(self.engine.device)

    @torch.inference_mode()
    def step(self) -> list[TokenEvent]:
        """One decode pass: feed every live row its last token, sample the next. Returns the new tokens."""
        if not self.live:
            return []
        t0 = time.perf_counter()
        S = self.cache.length + 1
        mask = self.mask[:, :, :, :S] if self.padded else None  # (B, 1, 1, S) view, nothing rebuilt
        logits = self.model(self.last, positions=self.pos, kv_cache=self.cache, attn_mask=mask)[:, -1]  # (B, V)
        self.pos += 1
        events = self._emit(logits)
        self._sync()
        self.stats.decode_seconds += time.perf_counter() - t0
        self.stats.decode_tokens += len(events)
        self.stats.decode_steps += 1
        return events

    def _emit(self, logits: torch.Tensor) -> list[TokenEvent]:
        """Sample from logits (B, V) of the live rows, record the tokens, drop finished rows."""
        sampler = self.sampler
        processed = sampler.process(logits, self.seen, self.counts)
        tokens = sampler.choose(processed)  # (B,)
        lp_list = top_ids = top_lps = None
        if self.want_logprobs:
            src = processed if self.processed_logprobs else logits
            # Greedy rows' processed logits are after bias and penalties only (no temperature or masks), so
            # their "processed" distribution is not a point mass. A batch mixing modes picks per row.
            if self.processed_logprobs and any(
                self.row_params[r].logprobs_mode == "raw" for r in self.live
            ):
                raw_rows = torch.tensor([self.row_params[r].logprobs_mode == "raw" for r in self.live],
                                        device=logits.device).reshape(-1, 1)
                src = torch.where(raw_rows, logits.float(), processed)
            logp = torch.log_softmax(src.float(), dim=-1)  # (B, V)
            lp_list = logp.gather(1, tokens.reshape(-1, 1)).squeeze(1).tolist()
            if self.max_top:
                top = torch.topk(logp, self.max_top, dim=-1)
                top_ids, top_lps = top.indices.tolist(), top.values.tolist()
        if self.seen is not None:
            self.seen.scatter_(1, tokens.reshape(-1, 1), True)
            self.counts.scatter_add_(1, tokens.reshape(-1, 1), torch.ones_like(tokens, dtype=torch.float32).reshape(-1, 1))
        token_list = tokens.tolist()
        events, keep, finished = [], [], False
        for b, (r, tok) in enumerate(zip(self.live, token_list)):
            out = self.outputs_[self.row_prompt[r]].samples[self.row_sample[r]]
            out.token_ids.append(tok)
            self.generated[r] += 1
            ev = TokenEvent(self.row_prompt[r], self.row_sample[r], tok, self.generated[r] - 1)
            k = self.row_logprobs[r]
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
                finished = True
            else:
                keep.append(b)
            events.append(ev)
        if finished:
            self._keep(keep)
            tokens = tokens.index_select(0, torch.tensor(keep, dtype=torch.long, device=tokens.device)) if keep else tokens[:0]
        self.last = tokens.reshape(-1, 1)  # (B, 1): the next step's input
        return events

    def finish(self, prompt_index: int, sample_index: int, reason: str = "stop") -> bool:
        """End one sample now, from outside (a stop string matched at the text edge, a client went away).
        Its row leaves the batch before the next step. Returns False if it had already finished."""
        for b, r in enumerate(self.live):
            if self.row_prompt[r] == prompt_index and self.row_sample[r] == sample_index:
                self.outputs_[prompt_index].samples[sample_index].finish_reason = reason
                keep = [i for i in range(len(self.live)) if i != b]
                with torch.inference_mode():
                    self._keep(keep)
                    self.last = self.last[keep] if keep else self.last[:0]
                return True
        return False

    def _keep(self, keep: list[int]) -> None:
        """Drop finished rows: keep batch positions ``keep`` (in order) in the cache and every per-row tensor."""
        self.live = [self.live[b] for b in keep]
        if not keep:
            return
        rows = torch.tensor(keep, dtype=torch.long, device=self.engine.device)
        self.cache.keep_rows(rows)
        self.pos = self.pos.index_select(0, rows)
        self.sampler.select(rows, keep)
        if self.padded:
            self.mask, self.pad = self.mask.index_select(0, rows), self.pad.index_select(0, rows)
            if not bool(self.pad.any()):
                self.padded = False  # the rows left have no padding: decode without a mask
        if self.seen is not None:
            self.seen, self.counts = self.seen.index_select(0, rows), self.counts.index_select(0, rows)

    def outputs(self) -> list[RequestOutput]:
        """One ``RequestOutput`` per prompt (complete once ``done``)."""
        return self.outputs_
