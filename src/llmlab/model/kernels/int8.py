"""Int8 weights for the linear layers (symmetric, one scale per output channel), swapped in from outside.

    from llmlab.model.kernels import int8
    model = int8.convert(model)                     # in place: every bias-free nn.Linear of every GPT -> Int8Linear
    engine = Engine(model)                           # the engine's fused forward keeps the int8 matrices as they are
    llmlab generate --model runs/base --prompt "..." --quantize int8

A weight row w_n (one output channel) is stored as int8 ``q_n = round(w_n / s_n)`` with ``s_n = max|w_n| / 127``,
so every entry is off by at most ``s_n / 2`` and a product ``x . w_n`` by at most ``s_n / 2 * sum|x|``
(tests/model/test_int8.py checks that bound, and the logit error and greedy agreement of whole models).
Q8_0 weights from a GGUF file come in as int8 directly (``from_blocks``; export/gguf_import.py), without a
float32 copy of the model.

Why: batch-1 decode of a model of ~100M parameters on a CPU is bound by reading the weights (a 135M model
streams ~540 MB of float32 per token); int8 reads a quarter of that. Two products, both PyTorch's own kernels:

* ``"dynamic"`` (x86, opt-in: ``--quantize int8-dynamic``): ``torch.ops.quantized.linear_dynamic``. fbgemm
  quantizes each call's activations to 8 bits (ONE scale per call; ``reduce_range`` keeps 7 bits so the AVX2
  u8 x s8 pair sums cannot saturate) and multiplies in integers: 2.5-3.6x faster than float32 ``mm`` at one row
  on this Zen 5 (docs/LOG.md), as llama.cpp's q8_0, which quantizes activations to 8 bits per 32 values. One
  scale per call has two costs: heavy-tailed inputs (down_proj's) lose precision (~5% error per product on a
  random model vs ~0.8% weight-only), and a row's result depends on the other rows of the call, so prefill vs
  decode and batch-mates change a sequence's numbers (the engine's "a row computes what it would alone" does
  not hold);
* ``"weight-only"`` (the default): ``torch.ops.aten._weight_int8pack_mm`` (x (M, K), q (N, K) int8, scales
  (N,); K must be a multiple of 16 or torch 2.13's CPU kernel reads past the end and crashes, so K is
  zero-padded), with the activations in bfloat16: its float32 path is a scalar loop here (~10x slower than
  float32 ``mm``), its bf16 path 1.2-1.4x faster than float32 ``mm`` at one row (compute-bound on the int8 ->
  float conversion); exact int8 weights, activations and results rounded to bf16.

A decode step of the 135M benchmark model (benchmarks/bench_int8_decode.py, 1 thread, CPU time): float32 36 ms,
weight-only 24 ms, dynamic 14 ms; llama.cpp q8_0 8.3 ms.

Both are PyTorch's; torch 2.13 marks its quantized tensors (fbgemm's input) deprecated in favour of
``torchao``, whose CPU int8 weight-only path is the same ``_weight_int8pack_mm``.

The layers hold the int8 matrix and scales as buffers (``qweight`` (N, K) int8, ``scale`` (N,) float32), so a
converted model's state dict carries them; it is for inference (no gradients). Not under torch.compile or
AOTInductor (fbgemm's packed weights are opaque objects; the weight-only step is 82% in its kernel, so a
compiled step would gain little): the engine refuses ``compile`` with int8. A GGUF file: ``llmlab import gguf``
then ``--quantize int8`` (the same int8 rows but for 1,442 of 134M entries one step apart, rounding ties;
through a float32 run folder), or ``load_gguf_int8`` directly.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

METHODS = ("dynamic", "weight-only")


def default_method() -> str:
    """``"weight-only"``: a row's result does not depend on the other rows of its batch (see the docstring)."""
    return "weight-only"


def available_methods() -> tuple[str, ...]:
    """The methods this torch build runs (``dynamic`` needs fbgemm: x86)."""
    return tuple(m for m in METHODS if m != "dynamic" or "fbgemm" in torch.backends.quantized.supported_engines)


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w (N, K) float -> (q (N, K) int8 in [-127, 127], scale (N,) float32): round-to-nearest, symmetric, one
    scale per row (output channel). An all-zero row gets scale 1 (its q is zeros)."""
    w = w.detach().float()
    amax = w.abs().amax(dim=1)  # (N,)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def from_blocks(d: torch.Tensor, qb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-block int8 (GGUF Q8_0: 32 int8 values per block with one scale) to one scale per row.

    d (N, nb) block scales, qb (N, nb, 32) int8 -> (q (N, nb * 32) int8, scale (N,)). Each row's scale becomes
    its largest block value / 127, so the block(s) holding the row's largest |value| keep their int8 values
    exactly and the others are rounded again onto the coarser grid: at most ``scale / 2`` off per entry (the
    round trip is measured in tests/model/test_int8.py and docs/LOG.md). Computed one tensor at a time."""
    d = d.float()
    amax = (d.abs() * qb.abs().amax(dim=2).float()).amax(dim=1)  # (N,) the row's largest |value|
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    ratio = (d / scale[:, None]).unsqueeze(2)  # (N, nb, 1): each block's step in units of the row's step
    q = torch.round(qb.float() * ratio).clamp_(-127, 127).to(torch.int8)
    return q.reshape(q.shape[0], -1), scale


class Int8Matrix:
    """An int8 matrix with per-row scales and its product with float activations: ``mm(x) == x @ W.T`` up to
    the quantization, W (N, K) the dequantized matrix. Holds the method's prepacked form (built on first use)."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, method: str | None = None):
        method = method or default_method()
        if method not in METHODS:
            raise ValueError(f"int8 method {method!r}: expected one of {', '.join(METHODS)}")
        if q.dtype != torch.int8 or q.dim() != 2 or scale.shape != (q.shape[0],):
            raise ValueError(f"Int8Matrix: want q (N, K) int8 and scale (N,), got {tuple(q.shape)} {q.dtype}, "
                             f"{tuple(scale.shape)}")
        self.q, self.scale, self.method = q, scale.float(), method
        self._packed = None

    @classmethod
    def quantize(cls, w: torch.Tensor, method: str | None = None) -> "Int8Matrix":
        return cls(*quantize_rows(w), method=method)

    @property
    def shape(self) -> torch.Size:
        return self.q.shape

    def dequantize(self) -> torch.Tensor:
        return self.q.float() * self.scale[:, None]  # (N, K)

    def packed(self):
        if self._packed is None:
            if self.method == "dynamic":
                zero = torch.zeros(self.q.shape[0], dtype=torch.long)
                with warnings.catch_warnings():  # torch 2.13 marks quantized tensors deprecated (see docstring)
                    warnings.simplefilter("ignore", UserWarning)
                    qt = torch._make_per_channel_quantized_tensor(self.q, self.scale.double(), zero, 0)
                self._packed = torch.ops.quantized.linear_prepack(qt, None)
            else:  # (q with K padded to a multiple of 16: the kernel reads past the end otherwise, and crashes)
                pad = -self.q.shape[1] % 16
                self._packed = (F.pad(self.q, (0, pad)) if pad else self.q, self.scale.to(torch.bfloat16), pad)
        return self._packed

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        """x (M, K) float -> (M, N) in x's dtype (computed from float32 or, weight-only, bf16 activations)."""
        if self.method == "dynamic":
            y = torch.ops.quantized.linear_dynamic(x.float(), self.packed(), True)
        else:
            q, scale, pad = self.packed()
            xb = x.to(torch.bfloat16)
            y = torch.ops.aten._weight_int8pack_mm(F.pad(xb, (0, pad)) if pad else xb.contiguous(), q, scale)
        return y.to(x.dtype)

    def addmm(self, residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """residual + x @ W.T (M, N)."""
        return self.mm(x).add_(residual)


class Int8Linear(nn.Module):
    """A bias-free linear layer with int8 weights: ``qweight`` (out, in) int8, ``scale`` (out,) float32."""

    def __init__(self, in_features: int, out_features: int, method: str | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.method = method or default_method()
        self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(out_features))
        self._matrix = None

    @classmethod
    def from_linear(cls, lin: nn.Linear, method: str | None = None) -> "Int8Linear":
        return cls.from_int8(*quantize_rows(lin.weight), method=method)

    @classmethod
    def from_int8(cls, q: torch.Tensor, scale: torch.Tensor, method: str | None = None) -> "Int8Linear":
        m = cls(q.shape[1], q.shape[0], method)
        m.qweight, m.scale = q.contiguous(), scale.float().contiguous()
        return m

    def matrix(self) -> Int8Matrix:
        """The Int8Matrix over the current buffers (rebuilt if they were replaced, e.g. by load_state_dict)."""
        m = self._matrix
        if m is None or m.q is not self.qweight or m.scale.data_ptr() != self.scale.data_ptr():
            m = self._matrix = Int8Matrix(self.qweight, self.scale, self.method)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.matrix().mm(x.reshape(-1, x.shape[-1])).view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, method={self.method}"


# ``--quantize`` choices of generate / chat / serve -> method.
QUANTIZE_CHOICES = {"int8": "weight-only", "int8-dynamic": "dynamic"}
QUANTIZE_HELP = ("int8 linear layers, one scale per output channel (model/kernels/int8.py): 'int8' weight-only "
                 "(bf16 activations), 'int8-dynamic' fbgemm's 8-bit activations too (x86; faster, less precise, a "
                 "row's numbers depend on its batch)")


def quantize(model: nn.Module, choice: str) -> nn.Module:
    """``convert`` by a ``--quantize`` choice ("int8", "int8-dynamic"); on a CPU only."""
    from llmlab.errors import LlmlabError

    method = QUANTIZE_CHOICES.get(choice)
    if method is None:
        raise LlmlabError(f"--quantize {choice}: expected one of {', '.join(QUANTIZE_CHOICES)}")
    if method not in available_methods():
        raise LlmlabError(f"--quantize {choice}: this torch build has no fbgemm (x86 only); use --quantize int8")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise LlmlabError(f"--quantize {choice}: int8 layers run on a CPU (--device cpu)")
    return convert(model, method)


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) for m in model.modules())


def convert(model: nn.Module, method: str | None = None, head: bool = True) -> nn.Module:
    """Replace every bias-free ``nn.Linear`` inside every GPT in ``model`` by an ``Int8Linear`` (in place;
    returns ``model``). With ``head`` the output head too (with tied embeddings the lookup table stays float:
    the head gets its own int8 copy). Layers already int8 are left alone."""
    from llmlab.model import gpt

    for net in [m for m in model.modules() if isinstance(m, gpt.GPT)]:
        for parent in list(net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear) and child.bias is None and (head or child is not net.lm_head):
                    setattr(parent, name, Int8Linear.from_linear(child, method))
    return model
