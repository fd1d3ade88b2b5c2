"""The engine's forward pass: the model's math with fused weights and few operator calls.

    from llmlab.infer.fused import FusedWeights
    fw = FusedWeights(model)                     # once per set of weights (the engine checks for updates)
    logits = fw.forward(idx, positions=pos, kv_cache=cache, attn_mask=mask, logits_to_keep=1)

Why: at batch 1 a decode step of a small model is a few hundred tiny operator calls, and on a CPU each costs
microseconds of dispatch while the arithmetic in it costs less (docs/LOG.md: ``aten::mm`` ~70% of a step, most
of it call overhead). So the engine runs the same function as ``GPT.forward`` (same signature, same cache,
same attention choice through ``gpt.attend``) with the weights rearranged once so that each layer is a handful
of large calls:

* q, k, v come out of ONE matmul, and on small models also the rotate-half images of q and k
  (``rotate_half`` is a signed permutation of a head's rows, so it is folded into a copy of those rows),
  which makes RoPE two elementwise calls: ``q * cos + q_rot * sin``. The copied rows add 2/3 to the q/k/v
  weights (+17% of a layer's): free where calls dominate, a loss where a step is bound by reading the
  weights, so they are used only below ``FOLD_ROTATION_MAX_BYTES`` (otherwise rotate_half is computed);
* gate and up are one matmul; silu(gate) * up is two calls;
* each RMSNorm weight is folded into the columns of the matmul that follows it, so a norm is a per-row scale
  ``rsqrt(mean(x^2) + eps)``;
* o_proj and down_proj add into the residual stream in the same call (``addmm``);
* everything works on (B*T, d) matrices: 2-D matmuls dispatch faster than 3-D ones;
* a decode step's attention (one new token per row) on a CPU runs in a small C kernel that reads each row's
  own cache slots and skips its masked prefix (``model/kernels/decode_attention.py``; the rows' prefixes come
  from ``kv_cache.pad``), where it is built and torch runs on one thread; otherwise SDPA with the mask;
* every matrix is stored contiguous as (d_in, d_out), so ``x @ w`` is a plain row-major GEMM: at batch 1 on
  this CPU's MKL that is ~20% faster per decode step than handing it ``weight.t()`` views (docs/LOG.md);
* on a CPU, matmuls of at least ``ONEDNN_MIN_ROWS`` rows (a batched decode step, a prefill) over the large
  matrices go through oneDNN (PyTorch's own CPU backend, ``torch.ops.mkldnn``) with the matrix reordered once
  into its blocked layout, the same prepacking inductor's CPU ``freezing`` does: on this AMD CPU that is
  1.3-3.5x faster than MKL's ``mm`` at 4-512 rows, and slower at 1-2 rows or for small matrices (call
  overhead), so batch-1 decode keeps ``mm``. bf16 weights (``llmlab serve --dtype bf16``) take oneDNN at every
  row count where the CPU multiplies bf16 natively (AMX, AVX512-BF16): there ``mm`` reads the transposed bf16
  matrix at a third of oneDNN's speed. The blocked copies are made on first use, so they cost memory
  (as much again as those matrices) only where a batch is run;
* with several threads, fewer rows than that over a large matrix are multiplied as column blocks in one ``bmm``
  (one block a thread; MKL would run such a product on one thread), reading the matrix in place; with one
  thread, on AMD CPUs with AVX-512 (where MKL runs its AVX2 code), a one-row product over a large matrix goes
  through numpy's OpenBLAS instead, whose one-row kernel reads the weights 15-55% faster there.

A model whose linear layers are int8 (``model/kernels/int8.py``, ``llmlab generate --quantize int8``) gets int8
fused matrices (``Int8Matrix``: q/k/v rows and gate/up rows concatenated with their per-row scales, so no
value is quantized again) and its norms' weights applied as a per-column scale instead of folded in (folding
would change each row's scale and round the int8 values a second time); oneDNN's packing does not apply.

Results equal ``GPT.forward`` up to float rounding (tests/infer/test_fused.py: 2e-5 in fp32, 1e-12 in fp64).
The fused copy costs as much memory as the model's matrices; ``Engine(model, fused=False)`` runs the model
itself instead.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from llmlab.model.gpt import GPT, KVCache, attend, default_positions
from llmlab.model.kernels import decode_attention as decode_kernel
from llmlab.model.kernels.onednn import mkl_is_slow_here
from llmlab.model.kernels.int8 import Int8Linear, Int8Matrix, is_quantized, quantize_rows
from llmlab.utils.device import fast_bf16_matmul


def _rotate_rows(w: torch.Tensor, n_heads: int, head_dim: int) -> torch.Tensor:
    """Rows of a (n_heads * head_dim, d) projection rearranged so that ``x @ out.T == rotate_half(x @ w.T)``:
    per head, rotate_half([a, b]) = [-b, a]."""
    half = head_dim // 2
    w = w.reshape(n_heads, head_dim, -1)
    return torch.cat([-w[:, half:], w[:, :half]], dim=1).reshape(n_heads * head_dim, -1)


# Fold RoPE's rotation into the weights only for models this small: their weights stay in a CPU's caches and
# a decode step is bound by operator calls; bigger models (and GPUs) are bound by weight traffic.
FOLD_ROTATION_MAX_BYTES = 16 * 2**20
# ... and only for calls of fewer rows: at 500 rows of the CPU speedrun's shape (d 128, 4 heads) the q/k/v
# matmul with the folded heads plus RoPE took 783 us, the plain one plus rotate_half 635 us; at 64 rows both
# 106-109 us (docs/LOG.md, 2026-12-06).
FOLD_ROTATION_MAX_ROWS = 128

# oneDNN's blocked matmul (see the module docstring): used for matrices of at least ONEDNN_MIN_ELEMENTS
# entries when a call has at least ONEDNN_MIN_ROWS rows. Measured on an AMD CPU with AVX-512 (where MKL runs
# AVX2 code), fp32, 1 thread (docs/LOG.md): at 16 rows (256, 1280) 1.6x, (768, 4096) 2.5x, (768, 50257) 2.3x
# faster than mm; (128, 640) 0.9x; at 2 rows 0.7-1.0x. On an Intel Xeon (MKL's AVX-512 code), 1 thread,
# 32 rows: (128, 2048) 0.78x, (768, 3072) 0.97x, (768, 50304) 1.31x (docs/LOG.md, 2026-12-06): there only
# matrices of millions of entries gain. bf16 weights use ONEDNN_MIN_ELEMENTS_BF16 (``mm`` is slow at bf16).
# Set ONEDNN_MIN_ROWS to 0 to turn it off.
ONEDNN_MIN_ROWS = 4
ONEDNN_MIN_ELEMENTS = 2**18 if mkl_is_slow_here() else 2**21
ONEDNN_MIN_ELEMENTS_BF16 = 2**18
ONEDNN_PACK_ROWS = 16  # the row count oneDNN's layout is chosen for; good from 4 to 512 rows here


# bf16 weights take oneDNN's prepacked matmul at every row count, where the CPU multiplies bf16 natively (AMX,
# AVX512-BF16): ``mm`` reads the transposed (d_in, d_out) bf16 operand at a third of oneDNN's speed at one row.
# Measured on this CPU (Xeon with AMX), (4096, 768), 1 thread: 1 row 386 vs 1,237 us (mm) vs 752 us (fp32 mm);
# 32 rows 845 vs 891 us (fp32: 2,454) (docs/LOG.md).
ONEDNN_MIN_ROWS_BF16 = 1


def onednn_usable(w: torch.Tensor) -> bool:
    """Whether ``w`` (a CPU matrix) can take oneDNN's prepacked matmul in this torch build: fp32, or bf16 where
    the CPU multiplies bf16 natively (elsewhere oneDNN would emulate it)."""
    if not (w.device.type == "cpu" and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")):
        return False
    return w.dtype == torch.float32 or (w.dtype == torch.bfloat16 and fast_bf16_matmul(w.device))


def available_memory() -> float:
    """Bytes of memory available to this process now (Linux's MemAvailable), or infinity where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


# Few-row products on several threads: MKL computes a product of 1-3 rows on one thread however many it is given
# (a batch-1 decode step of a 135M model gained nothing from a second core), while ``bmm`` runs its batch's
# products in parallel. So with P threads, a large matrix's columns are cut into P blocks, read in place as one
# strided (P, d_in, d_out / P) batch, and each thread multiplies one block. Measured on this 2-core CPU, 1 row,
# weights streamed from memory (docs/LOG.md): (576, 3072) 22.2 -> 25.6 GB/s, (1536, 576) 12.2 -> 16.3, (576, 49152)
# 23.5 -> 33.2; batch-1 decode at 2 threads 87 -> 111 tok/s (42M model), 27 -> 32 (135M), with OpenMP's spinning
# waits; with passive waits (``llmlab generate`` on a busy machine) the gain is smaller.
SPLIT_MIN_ELEMENTS = 2**18


# One-row products on one thread through numpy's OpenBLAS, on the CPUs where MKL runs its AVX2 code (AMD with
# AVX-512, ``kernels.onednn``): streaming the weights, OpenBLAS's one-row kernel reads (576, 576) at 16.8 GB/s
# where MKL reads 10.7-12.0, (1536, 576) 16.9-18.4 vs 12.1-13.0, (576, 3072) 24.5 vs 20.9 (docs/LOG.md); a 135M
# model decodes 28 -> 34 tok/s. Only with one torch thread: two thread pools that both spin fight over the cores.
# OpenBLAS is held to one thread for the forward and given back its own count after (``_blas_one_thread``).
BLAS = "blas"


@functools.cache
def _openblas():
    """numpy's OpenBLAS (a threadpoolctl controller) where one-row products should take it, else None."""
    if not mkl_is_slow_here():
        return None
    import numpy  # noqa: F401  (loads the BLAS numpy links)
    from threadpoolctl import ThreadpoolController

    libs = [c for c in ThreadpoolController().lib_controllers if c.internal_api == "openblas"]
    return libs[0] if libs else None


class _blas_one_thread:
    """Hold OpenBLAS to one thread inside the block (~1 us a set), then restore its count."""

    def __enter__(self):
        lib = _openblas()
        self.before = lib.get_num_threads()
        if self.before != 1:
            lib.set_num_threads(1)

    def __exit__(self, *exc):
        if self.before != 1:
            _openblas().set_num_threads(self.before)


def _split_mm(x: torch.Tensor, w: torch.Tensor, parts: int) -> torch.Tensor:
    """x (M, d_in) @ w (d_in, d_out) as ``parts`` column blocks in one bmm -> (parts, M, d_out / parts)."""
    (M, K), N = x.shape, w.shape[1]
    return torch.bmm(x.expand(parts, M, K), w.view(K, parts, N // parts).transpose(0, 1))


def _mm(x: torch.Tensor, w: torch.Tensor, how: torch.Tensor | int | None) -> torch.Tensor:
    """x (M, d_in) @ w (d_in, d_out). ``how`` (from ``FusedWeights.packed``): None for ``mm``, w's oneDNN blocked
    copy, or a number of column blocks to multiply in parallel; an ``Int8Matrix`` w (d_out, d_in) takes its int8
    product."""
    if isinstance(w, Int8Matrix):
        return w.mm(x)
    if how is None:
        return torch.mm(x, w)
    if isinstance(how, int):
        return _split_mm(x, w, how).transpose(0, 1).reshape(x.shape[0], w.shape[1])
    if how is BLAS:
        return torch.from_numpy(x.numpy() @ w.numpy())  # views of the same memory both ways
    return torch.ops.mkldnn._linear_pointwise(x, how, None, "none", [None], "")


def _addmm(residual: torch.Tensor, x: torch.Tensor, w: torch.Tensor, how: torch.Tensor | int | None) -> torch.Tensor:
    """residual + x @ w, in one call (two for an ``Int8Matrix`` or column blocks)."""
    if isinstance(w, Int8Matrix):
        return w.addmm(residual, x)
    if how is None:
        return torch.addmm(residual, x, w)
    if isinstance(how, int):
        M, N = residual.shape
        return residual.view(M, how, N // how).add(_split_mm(x, w, how).transpose(0, 1)).view(M, N)
    if how is BLAS:
        y = x.numpy() @ w.numpy()
        y += residual.numpy()
        return torch.from_numpy(y)
    return torch.ops.mkldnn._linear_pointwise(x, residual, how, None, "add")


class FusedWeights:
    """Per layer, as contiguous (d_in, d_out) matmul operands: ``qkv`` (blocks of columns: q, k, v, and with
    ``fold_rotation`` rot(q), rot(k)) with the input norm folded in, ``o``, ``gate_up`` with the
    post-attention norm folded in, ``down``; then the head with the final norm folded in.
    ``key`` identifies the parameter versions it was built from (see ``stale``)."""

    def __init__(self, model: GPT, fold_rotation: bool | None = None):
        c = model.config
        self.config = c
        self.d_eps = c.norm_eps * c.d_model  # sum(x^2) + d * eps = d * (mean(x^2) + eps)
        self.embed = model.embed_tokens.weight
        self.rope_cos, self.rope_sin = model.rope_cos, model.rope_sin
        self.key = self.version_key(model)
        H, Hkv, hd = c.n_head, c.n_kv_head, c.head_dim
        dtype = self.embed.dtype
        self.wide = dtype in (torch.float32, torch.float64)
        if fold_rotation is None:
            size = model.num_params() * self.embed.element_size()
            fold_rotation = self.embed.device.type == "cpu" and size <= FOLD_ROTATION_MAX_BYTES
        self.int8 = is_quantized(model)
        self._split = None  # (threads or BLAS, packed()'s answer for them) of the last few-row call
        self._eager_shares: dict[tuple, float] = {}  # eager_share's answers by (rows, threads, grad)
        if self.int8:
            self._init_int8(model)
            return
        self.fold_rotation = fold_rotation

        def fold(w: torch.Tensor, norm_weight: torch.Tensor) -> torch.Tensor:
            """The transposed matmul operand (d, out): (x_hat * g) @ w.T == x_hat @ (w * g).T, and the norm's
            sqrt(d) (see ``_normed``). Folded in fp32 (fp64 stays fp64) so bf16 weights are rounded once."""
            up = torch.promote_types(dtype, torch.float32)
            g = norm_weight.to(up) * c.d_model ** 0.5
            return (w.to(up) * g).to(dtype).t().contiguous()

        self.layers = []
        with torch.no_grad():
            for blk in model.layers:
                a, m = blk.self_attn, blk.mlp
                q, k, v = a.q_proj.weight, a.k_proj.weight, a.v_proj.weight
                rot = [_rotate_rows(q, H, hd), _rotate_rows(k, Hkv, hd)] if fold_rotation else []
                qkv = torch.cat([q, k, v, *rot])
                gate_up = torch.cat([m.gate_proj.weight, m.up_proj.weight])
                self.layers.append((
                    fold(qkv, blk.input_layernorm.weight),  # (d, (H + 2 * Hkv) * hd [+ (H + Hkv) * hd])
                    a.o_proj.weight.t().contiguous(),  # (H * hd, d)
                    fold(gate_up, blk.post_attention_layernorm.weight),  # (d, 2*ffn)
                    m.down_proj.weight.t().contiguous(),  # (ffn, d)
                ))
            self.head = fold(model.lm_head.weight, model.norm.weight)  # (d, V)
        self._packed = None  # oneDNN's blocked copies, per layer and the head: built by ``packed`` on first use
        self._onednn_fits = None  # whether those copies may be made (see ``_onednn_rows``); decided once

    def _init_int8(self, model: GPT) -> None:
        """The int8 layout: per layer (qkv, o, gate_up, down) as ``Int8Matrix`` (rows = output channels), the
        norms' weights times sqrt(d) kept apart in ``norms`` (per layer: input, post-attention; then final)."""
        c = self.config
        self.fold_rotation = False
        method = next(m.method for m in model.modules() if isinstance(m, Int8Linear))

        def rows(*lins) -> Int8Matrix:  # the layers' int8 rows one below the other (a float layer is quantized)
            qs = [(lin.qweight, lin.scale) if isinstance(lin, Int8Linear) else quantize_rows(lin.weight)
                  for lin in lins]
            if len(qs) == 1:
                return Int8Matrix(*qs[0], method=method)
            return Int8Matrix(torch.cat([q for q, _ in qs]), torch.cat([s for _, s in qs]), method=method)

        def g(norm) -> torch.Tensor:
            return norm.weight.detach().to(self.embed.dtype) * c.d_model ** 0.5  # (d,)

        self.layers, self.norms = [], []
        with torch.no_grad():
            for blk in model.layers:
                a, m = blk.self_attn, blk.mlp
                self.layers.append((rows(a.q_proj, a.k_proj, a.v_proj), rows(a.o_proj),
                                    rows(m.gate_proj, m.up_proj), rows(m.down_proj)))
                self.norms.append((g(blk.input_layernorm), g(blk.post_attention_layernorm)))
            self.head = rows(model.lm_head)
            self.norms.append(g(model.norm))
        self._packed, self._onednn_fits = None, False

    @staticmethod
    def version_key(model: GPT) -> tuple:
        """Changes whenever a parameter is replaced or updated in place (optimizer steps bump ``_version``)."""
        return tuple((p.data_ptr(), p._version) for p in model.parameters())

    def stale(self, model: GPT) -> bool:
        return self.version_key(model) != self.key

    def matrices(self) -> list[torch.Tensor]:
        """Every matmul operand: the layers' (qkv, o, gate_up, down), then the head."""
        return [w for ws in self.layers for w in ws] + [self.head]

    def _onednn_rows(self, rows: int) -> bool:
        """Whether a call of ``rows`` rows takes oneDNN: enough rows, a torch with oneDNN, and room for the
        blocked copies (at most half the memory available when first asked: a 1B-parameter fp32 model's
        copies are ~5 GB; without room the matmuls stay on ``mm``, slower but within memory)."""
        if not ONEDNN_MIN_ROWS or self.int8:
            return False
        if rows < (ONEDNN_MIN_ROWS_BF16 if self.head.dtype == torch.bfloat16 else ONEDNN_MIN_ROWS):
            return False
        if self._onednn_fits is None:
            big = [w for w in self.matrices() if w.numel() >= self._min_elements]
            need = sum(w.numel() * w.element_size() for w in big)
            self._onednn_fits = onednn_usable(self.head) and need <= available_memory() / 2
        return self._onednn_fits

    def onednn_share(self, rows: int) -> float:
        """The fraction of the matrices' entries (~ of the matmul work) that a call of ``rows`` rows runs
        through oneDNN. Where it is most of it, this eager forward beats the compiled decode step, whose GEMMs
        are MKL's (gpt2-small, 16 rows: 120 vs 86 tok/s; docs/LOG.md)."""
        return self._large_share if self._onednn_rows(rows) else 0.0

    def eager_share(self, rows: int) -> float:
        """The fraction of the matrices' entries that a call of ``rows`` rows multiplies on a path the compiled
        decode step lacks: oneDNN's packing, column blocks on several threads, or OpenBLAS at one row. Where it
        is most of the work, this eager forward beats the compiled step (a 42M model at one thread: 134.8 vs
        130.6 tok/s; docs/LOG.md)."""
        key = (rows, torch.get_num_threads(), torch.is_grad_enabled())
        got = self._eager_shares.get(key)
        if got is None:
            if self._onednn_rows(rows):
                got = self._large_share
            else:
                layers, head = self.packed(rows)
                sizes = [w.numel() for w in self.matrices()]
                hows = [p for ws in layers for p in ws] + [head]
                got = sum(n for n, how in zip(sizes, hows) if how is not None) / sum(sizes)
            self._eager_shares[key] = got
        return got

    @functools.cached_property
    def _large_share(self) -> float:
        """The fraction of the matrices' entries in matrices large enough for oneDNN (fixed per copy)."""
        if self.int8:
            return 0.0
        sizes = [w.numel() for w in self.matrices()]
        return sum(n for n in sizes if n >= self._min_elements) / sum(sizes)

    @property
    def _min_elements(self) -> int:
        """The size from which a matrix takes oneDNN (read when asked: tests change the constants)."""
        return ONEDNN_MIN_ELEMENTS_BF16 if self.head.dtype == torch.bfloat16 else ONEDNN_MIN_ELEMENTS

    @functools.cached_property
    def _all_mm(self) -> tuple[list[tuple], None]:
        """``packed``'s answer when every product takes ``mm`` (one object, so ``forward`` can tell it apart)."""
        return [(None,) * 4] * len(self.layers), None

    def packed(self, rows: int) -> tuple[list[tuple], torch.Tensor | int | str | None]:
        """For a call of ``rows`` rows: per layer (qkv, o, gate_up, down) and the head, how ``_mm`` multiplies
        each matrix: oneDNN's blocked copy (from ``ONEDNN_MIN_ROWS`` rows, large matrices), a number of column
        blocks (fewer rows, several threads, large matrices, not when compiling), ``BLAS`` (one row, one thread,
        large float32 matrices, where numpy's OpenBLAS beats MKL), or None (``mm``)."""
        if not self._onednn_rows(rows):
            parts = torch.get_num_threads()
            if (self.int8 or torch.compiler.is_compiling() or self.head.device.type != "cpu"
                    or self.head.dtype != torch.float32):
                return self._all_mm
            if parts == 1:
                parts = BLAS if rows == 1 and not torch.is_grad_enabled() and _openblas() is not None else None
            if parts is None:
                return self._all_mm
            if self._split is None or self._split[0] != parts:
                def split(w: torch.Tensor) -> int | str | None:
                    if w.numel() < SPLIT_MIN_ELEMENTS:
                        return None
                    return parts if parts is BLAS or w.shape[1] % parts == 0 else None

                layers, head = [tuple(split(w) for w in ws) for ws in self.layers], split(self.head)
                none = head is None and all(p is None for ws in layers for p in ws)
                self._split = parts, (self._all_mm if none else (layers, head))
            return self._split[1]
        if self._packed is None:
            def pack(w: torch.Tensor) -> torch.Tensor | None:  # w (d_in, d_out) -> oneDNN's layout of w.T
                if w.numel() < self._min_elements:
                    return None
                return torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), ONEDNN_PACK_ROWS)

            with torch.no_grad():
                self._packed = [tuple(pack(w) for w in ws) for ws in self.layers], pack(self.head)
        return self._packed

    # ------------------------------------------------------------------------------------------------------
    def _normed(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, d) -> x / sqrt(sum(x^2) + d * eps): RMSNorm up to the factor sqrt(d) and the norm's weight,
        which live in the next matmul, or, for int8 matrices, in ``g`` (d,), applied here.
        The scale is computed in fp32 (fp64 stays fp64), as the model's is."""
        if self.wide:  # fp32/fp64: no casts (each would be one more call)
            r = torch.linalg.vecdot(x, x).add_(self.d_eps).rsqrt_().unsqueeze_(1)
            return x * r if g is None else (x * r).mul_(g)
        xf = x.float()
        y = x * torch.linalg.vecdot(xf, xf).add_(self.d_eps).rsqrt_().unsqueeze_(1).to(x.dtype)
        return y if g is None else y.mul_(g)

    def forward(self, idx: torch.Tensor, **kw) -> torch.Tensor:
        """Same contract as ``GPT.forward``: idx (B, T) -> logits (B, T or logits_to_keep, vocab)."""
        # One-row calls (a decode step; a prefill's last row through the head) may go to OpenBLAS: hold its threads.
        one_row = self.packed(1)
        if self._split is not None and one_row is self._split[1] and self._split[0] is BLAS:
            with _blas_one_thread():
                return self._forward(idx, **kw)
        return self._forward(idx, **kw)

    def _forward(
        self,
        idx: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        attn_mask: torch.Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        c = self.config
        B, T = idx.shape
        N, H, Hkv, hd = B * T, c.n_head, c.n_kv_head, c.head_dim
        past = kv_cache.length if kv_cache is not None else 0
        positions = default_positions(idx, positions, kv_cache, c.max_seq_len).expand(B, T).reshape(N)
        cos = self.rope_cos.index_select(0, positions).unsqueeze(1)  # (N, 1, hd): broadcasts over heads
        sin = self.rope_sin.index_select(0, positions).unsqueeze(1)
        x = self.embed.index_select(0, idx.reshape(N))  # (N, d): the residual stream, one row per token
        n_qk, gqa, half = H + Hkv, Hkv != H, hd // 2  # n_qk: heads that get RoPE (q and k)
        packed_layers, packed_head = self.packed(N)
        # From FOLD_ROTATION_MAX_ROWS rows (a prefill) the folded rotate-half heads cost more matmul than the
        # rotation they save: there q/k/v come from the plain columns and rotate_half is computed.
        unfold = self.fold_rotation and N >= FOLD_ROTATION_MAX_ROWS
        # One new token per row over a cache whose masked slots are known as per-row prefixes: the C kernel
        # (decided at the first layer; every layer's cache has the same layout).
        pad = kv_cache.pad if kv_cache is not None else None
        kernel = T == 1 and kv_cache is not None and (attn_mask is None or pad is not None)
        for layer, ((w_qkv, w_o, w_gu, w_down), (p_qkv, p_o, p_gu, p_down)) in enumerate(
                zip(self.layers, packed_layers)):
            # Heads of the one projection: [q (H) | k (Hkv) | v (Hkv) (| rot q (H) | rot k (Hkv))], hd wide each.
            norm_in, norm_post = self.norms[layer] if self.int8 else (None, None)
            if unfold and p_qkv is None and isinstance(w_qkv, torch.Tensor):  # many rows: skip the folded heads
                qkv = _mm(self._normed(x, norm_in), w_qkv[:, :(n_qk + Hkv) * hd], None).view(N, -1, hd)
            else:
                qkv = _mm(self._normed(x, norm_in), w_qkv, p_qkv).view(N, -1, hd)
            if self.fold_rotation and not unfold:
                rotated = qkv[:, n_qk + Hkv:]  # the projection's own rotate-half heads
            else:
                rotated = torch.cat([-qkv[:, :n_qk, half:], qkv[:, :n_qk, :half]], dim=-1)  # rotate_half
            qk = torch.addcmul(qkv[:, :n_qk] * cos, rotated, sin)  # RoPE: (N, H + Hkv, hd)
            qk = qk.unflatten(0, (B, T)).transpose(1, 2)  # (B, H + Hkv, T, hd)
            q, k = qk[:, :H], qk[:, H:]  # (B, H, T, hd), (B, Hkv, T, hd)
            v = qkv[:, n_qk:n_qk + Hkv].unflatten(0, (B, T)).transpose(1, 2)  # (B, Hkv, T, hd)
            if kv_cache is not None:
                k, v = kv_cache.update(layer, k, v)  # (B, Hkv, S, hd), in the cache's dtype
            if kernel and (layer > 0 or decode_kernel.applies(q, k, v)):
                y = decode_kernel.decode_attention(q, k, v, pad)  # (B, H, 1, hd)
            else:
                kernel = False
                # (q.to: a no-op unless the cache has its own dtype, the engine's kv_dtype; y goes back below)
                y = attend(q.to(k.dtype), k, v, past, attn_mask, gqa=gqa)  # (B, H, T, hd)
            x = _addmm(x, y.transpose(1, 2).reshape(N, H * hd).to(x.dtype), w_o, p_o)  # x + o_proj(y)
            gu = _mm(self._normed(x, norm_post), w_gu, p_gu)  # (N, 2*ffn)
            f = gu.shape[1] // 2
            x = _addmm(x, F.silu(gu[:, :f]).mul_(gu[:, f:]), w_down, p_down)  # x + down(silu(gate) * up)
        if kv_cache is not None:
            kv_cache.length += T
        if logits_to_keep:
            x = x.view(B, T, -1)[:, -logits_to_keep:].reshape(-1, x.shape[1])
            if x.shape[0] < N:
                packed_head = self.packed(x.shape[0])[1]
        logits = _mm(self._normed(x, self.norms[-1] if self.int8 else None), self.head, packed_head)  # (B*kept, V)
        return logits.view(B, -1, logits.shape[1])
