"""An ahead-of-time compiled decode step (AOTInductor): one C++ call per generated token instead of ~150
Python-dispatched operator calls.

    engine = Engine(model, compile=True)                  # or: llmlab generate/chat --compile
    engine.generate([ids], SamplingParams(temperature=0))  # decode steps run the compiled step

    from llmlab.infer.compiled import CompiledDecoder      # what the engine does underneath
    dec = CompiledDecoder.load_or_build(fused_weights)     # compiles once per model shape, then from disk
    logits = dec.step(fused_weights, tokens, positions, pad, cache)   # (B, V); writes k/v, advances the cache

Why: at batch 1 a small model's decode step on a CPU is bound by operator dispatch, not arithmetic
(``infer/fused.py`` cut it from ~250 to ~150 calls; each still costs microseconds of Python and dispatcher
time). PyTorch's ahead-of-time compiler (``torch.export`` + AOTInductor) turns the whole step into one shared
library: the elementwise work is fused into generated C++ loops and the matmuls call the same BLAS, with no
Python between them (docs/LOG.md: 2-4x less time per token than the eager fused path at the CPU speedrun shape).

What is compiled is the same math as ``FusedWeights.forward`` for one new token per row (T = 1):

* the weights are inputs, not constants, so one package serves every set of weights of that shape (RL's
  policy updates need no recompile; the engine passes the current ``FusedWeights``);
* the cache is read, never written, inside the graph: past keys/values are the first S slots, and the new
  token's own key/value join the softmax as a second block (``m = max(max_s q.k_s, q.k_new)``, exponentials
  shifted by m), so no concatenation copies the cache. ``step`` then writes the new keys/values of all layers
  with two copies and advances ``cache.length``;
* batch size B, filled slots S and cache length M are dynamic; the padding mask is rebuilt inside from each
  row's ``pad`` (masked slots are a prefix ``[0, pad[b])``, as the engine keeps them).

A package depends on the model's shape, the dtype, the device and the torch version (``package_key``); it is
kept in ``$LLMLAB_CACHE_DIR/compiled`` (default ``~/.cache/llmlab/compiled``), written atomically. The first
build takes ~30-60 s of C++ compilation (gcc/clang must be installed); later loads take well under a second.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from llmlab.errors import LlmlabError
from llmlab.model.gpt import KVCache
from llmlab.utils.io import cache_root

FORMAT_VERSION = 1  # bump when the graph's inputs change (its source is hashed into the key as well)


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # progress notes stay off stdout (--json output lives there)


def cache_dir() -> Path:
    return cache_root() / "compiled"


def package_key(fw) -> str:
    """A name for the package of this weight layout: model shape, dtype, device type, torch, format."""
    c = fw.config
    shape = {k: getattr(c, k) for k in ("vocab_size", "n_layer", "n_head", "n_kv_head", "d_model", "ffn_hidden",
                                        "max_seq_len", "norm_eps", "head_dim")}
    ident = dict(shape, dtype=str(fw.embed.dtype), device=fw.embed.device.type, torch=torch.__version__,
                 format=FORMAT_VERSION, code=_code_digest(),
                 strides=[list(t.stride()) for t in [*_inputs(fw)[:4], *_inputs(fw)[4]]])
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"decode-L{c.n_layer}-d{c.d_model}-V{c.vocab_size}-{ident['dtype'].split('.')[-1]}-{digest}"


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """The traced source is part of the key: an edit to the step's math can't load a stale package."""
    return hashlib.sha256(inspect.getsource(_DecodeStep).encode()).hexdigest()


def _inputs(fw) -> list:
    """The FusedWeights tensors the graph reads, in its input order: embed, rope_cos, rope_sin, head, then the
    list of every layer's (qkv, o, gate_up, down). Detached once per FusedWeights (kept on it)."""
    got = getattr(fw, "_compiled_inputs", None)
    if got is None:
        got = [t.detach() for t in (fw.embed, fw.rope_cos, fw.rope_sin, fw.head)]
        got.append([t.detach() for layer in fw.layers for t in layer])
        fw._compiled_inputs = got
    return got


class _DecodeStep(torch.nn.Module):
    """The traced function. Inputs: tokens (B,) long, positions (B,) long, pad (B,) long, slots (S,) long
    (``arange(S)``: it carries S, the filled cache slots), k_cache / v_cache (L, B, Hkv, M, hd), then
    ``_inputs(fw)``. Outputs: logits (B, V), new keys and values (L, B, Hkv, hd)."""

    def __init__(self, fw):
        super().__init__()
        c = fw.config
        self.H, self.Hkv, self.hd, self.L = c.n_head, c.n_kv_head, c.head_dim, c.n_layer
        if fw.fold_rotation:
            raise ValueError("the compiled step computes RoPE's rotation itself: "
                             "build FusedWeights(fold_rotation=False)")
        self.d_eps = fw.d_eps

    def _normed(self, x):
        # RMSNorm up to sqrt(d) and the norm's weight, both folded into the next matmul (see FusedWeights).
        return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + self.d_eps)

    def forward(self, tokens, positions, pad, slots, k_cache, v_cache, embed, cos_t, sin_t, head, layers):
        H, Hkv, hd = self.H, self.Hkv, self.hd
        G, n_qk, half = H // Hkv, H + Hkv, hd // 2
        B, S = tokens.shape[0], slots.shape[0]
        scale = 1.0 / math.sqrt(hd)
        x = embed.index_select(0, tokens)  # (B, d)
        cos = cos_t.index_select(0, positions).unsqueeze(1)  # (B, 1, hd)
        sin = sin_t.index_select(0, positions).unsqueeze(1)
        # (B, 1, 1, S) additive mask: -inf on each row's padded prefix.
        bias = torch.where(slots.unsqueeze(0) < pad.unsqueeze(1), float("-inf"), 0.0).to(x.dtype).view(B, 1, 1, S)
        new_k, new_v = [], []
        for i in range(self.L):
            w_qkv, w_o, w_gu, w_down = layers[4 * i: 4 * i + 4]
            qkv = torch.mm(self._normed(x), w_qkv).view(B, -1, hd)  # [q | k | v] heads
            qk = qkv[:, :n_qk]
            qk = qk * cos + torch.cat([-qk[..., half:], qk[..., :half]], dim=-1) * sin  # RoPE: (B, H + Hkv, hd)
            q = qk[:, :H].reshape(B, Hkv, G, hd)  # the G query heads of a kv head side by side
            k, v = qk[:, H:], qkv[:, n_qk:n_qk + Hkv]  # (B, Hkv, hd)
            new_k.append(k)
            new_v.append(v)
            kp, vp = k_cache[i, :, :, :S], v_cache[i, :, :, :S]  # (B, Hkv, S, hd)
            s_past = torch.matmul(q, kp.transpose(-1, -2)) * scale + bias  # (B, Hkv, G, S)
            s_new = (q * k.unsqueeze(2)).sum(-1, keepdim=True) * scale  # (B, Hkv, G, 1)
            m = torch.maximum(s_past.amax(-1, keepdim=True), s_new)  # finite: the new key is never masked
            p_past, p_new = torch.exp(s_past - m), torch.exp(s_new - m)
            y = (torch.matmul(p_past, vp) + p_new * v.unsqueeze(2)) / (p_past.sum(-1, keepdim=True) + p_new)
            x = torch.addmm(x, y.reshape(B, H * hd), w_o)  # x + o_proj(attention)
            gu = torch.mm(self._normed(x), w_gu)  # (B, 2 * ffn)
            f = gu.shape[1] // 2
            x = torch.addmm(x, F.silu(gu[:, :f]) * gu[:, f:], w_down)  # x + down(silu(gate) * up)
        logits = torch.mm(self._normed(x), head)  # (B, V)
        return logits, torch.stack(new_k), torch.stack(new_v)


class CompiledDecoder:
    """A loaded decode-step package; ``step`` runs one decode pass of a batch."""

    def __init__(self, runner, key: str, path: Path):
        self.runner, self.key, self.path = runner, key, path
        self._slots = torch.arange(0)
        # The package's __call__ re-parses its input/output tree specs from JSON on every call (~300 us measured,
        # more than a small model's whole step); the loader's boxed_run takes the flat tensor list directly.
        loader = getattr(runner, "loader", None)
        self._boxed_run = getattr(loader, "boxed_run", None)

    @classmethod
    def load_or_build(cls, fw, directory: Path | None = None, log=to_stderr) -> "CompiledDecoder":
        """Load the package for ``fw``'s layout from ``directory`` (default ``cache_dir()``), compiling it first
        if there is none. Raises ``LlmlabError`` when compilation is impossible here (no C++ compiler, ...)."""
        from torch._inductor import aoti_compile_and_package, aoti_load_package

        key = package_key(fw)
        directory = Path(directory) if directory is not None else cache_dir()
        path = directory / f"{key}.pt2"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            if log:
                log(f"compiling the decode step for this model shape (once; ~30-60 s) into {path}")
            t0 = time.perf_counter()
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".pt2", dir=directory)
            os.close(fd)
            try:
                with warnings.catch_warnings():  # torch.export's own deprecation notes are not the user's business
                    warnings.simplefilter("ignore", FutureWarning)
                    program = cls._export(fw)
                    aoti_compile_and_package(program, package_path=tmp)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, path)  # atomic: a killed build leaves no half-written package
            except Exception as e:  # inductor raises many types (compiler missing, codegen, ...)
                raise LlmlabError(f"could not compile the decode step ({type(e).__name__}: "
                                  f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no message'}); "
                                  f"run without compile") from e
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            if log:
                log(f"compiled in {time.perf_counter() - t0:.0f} s")
        try:
            runner = aoti_load_package(str(path))
        except Exception as e:
            raise LlmlabError(f"{path}: not a loadable decode-step package ({type(e).__name__}); delete it to "
                              f"rebuild") from e
        return cls(runner, key, path)

    @staticmethod
    def _export(fw):
        """torch.export of ``_DecodeStep`` with B, S and M dynamic (examples B=2, S=3, M=5 keep them apart)."""
        c, dev, dt = fw.config, fw.embed.device, fw.embed.dtype
        B, S, M = 2, 3, 5
        shape = (c.n_layer, B, c.n_kv_head, M, c.head_dim)
        args = (torch.zeros(B, dtype=torch.long, device=dev), torch.full((B,), S, dtype=torch.long, device=dev),
                torch.tensor([0, 1], device=dev), torch.arange(S, device=dev),
                torch.zeros(shape, dtype=dt, device=dev), torch.zeros(shape, dtype=dt, device=dev),
                *_inputs(fw))
        b = torch.export.Dim("batch", min=1, max=65536)
        s = torch.export.Dim("filled", min=1, max=c.max_seq_len)
        m = torch.export.Dim("slots", min=2, max=c.max_seq_len + 1)
        cache_dims = {1: b, 3: m}
        dynamic = ({0: b}, {0: b}, {0: b}, {0: s}, cache_dims, cache_dims, None, None, None, None,
                   [None] * len(args[-1]))
        with torch.no_grad():
            return torch.export.export(_DecodeStep(fw), args, dynamic_shapes=dynamic)

    def step(self, fw, tokens: torch.Tensor, positions: torch.Tensor, pad: torch.Tensor, cache: KVCache):
        """One decode pass. tokens, positions (B, 1) long; pad (B,) long; cache holds S = cache.length filled
        slots. Returns logits (B, V); the new keys/values are written at slot S and the cache advanced."""
        S = cache.length
        if S < 1 or S >= cache.max_len:
            raise ValueError(f"compiled decode needs 1 <= filled slots ({S}) < cache length ({cache.max_len})")
        if self._slots.numel() < cache.max_len or self._slots.device != tokens.device:
            self._slots = torch.arange(max(cache.max_len, 2 * self._slots.numel()), device=tokens.device)
        inputs = _inputs(fw)
        args = [tokens.reshape(-1), positions.reshape(-1), pad, self._slots[:S], cache.k, cache.v, *inputs[:4]]
        if self._boxed_run is not None:
            logits, k, v = self._boxed_run(args + inputs[4])  # the flat order of (args..., layers...)
        else:
            logits, k, v = self.runner(*args, inputs[4])
        cache.k.select(3, S).copy_(k)  # (L, B, Hkv, hd) into slot S of every layer
        cache.v.select(3, S).copy_(v)
        cache.length = S + 1
        return logits
