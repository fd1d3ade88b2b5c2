"""GGUF import: a llama.cpp model file of the Llama family becomes a run folder.

    llmlab import gguf --path model.gguf --out runs/imported
    python -c "import llmlab.runs as r; m = r.load_model('runs/imported')"     # our GPT, float32

    from llmlab.export.gguf_import import import_gguf, read_gguf
    config, state_dict, reader = read_gguf("model.gguf")    # without writing anything
    model, reader = load_gguf_int8("model-q8_0.gguf")       # int8 linear layers straight from Q8_0 blocks

What it reads (the file is memory-mapped by the ``gguf`` package's reader):

* Architecture ``llama`` (llama.cpp's converter writes Llama, Mistral and their fine-tunes so): the
  hyperparameters under ``llama.*`` (context, width, depth, FFN width, head counts, head size as
  ``attention.key_length``, RoPE base and dimensions, RMSNorm epsilon); ``output.weight`` absent means a tied
  head; a ``rope_freqs.weight`` tensor is Llama-3 RoPE scaling (``gguf.llama3_scaling_from_factors``). Another
  architecture, experts, biases, partial RoPE or another RoPE scaling type is a one-line error naming it.
* Tensor types F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and the K-quants Q2_K..Q6_K, dequantized by the
  ``gguf`` package into float32, the run's dtype (the quantization error stays in the weights: the imported
  model computes what llama.cpp's dequantized weights compute, in float32). Other types are refused by name.
* The Q and K projections' rows are put back from llama.cpp's interleaved RoPE order into the rotate-half
  order (the inverse of ``gguf.permute_rope``, which is llama.cpp's converter's permutation).
* The tokenizer metadata goes to ``imported_tokenizer.write_tokenizer`` (the run folder's ``tokenizer/``).

A truncated or malformed file, or a tensor type the ``gguf`` package does not know, is a one-line error.
"""

from __future__ import annotations

import struct
from pathlib import Path

from llmlab.errors import LlmlabError

SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                   "Q6_K")
# llama.cpp's per-layer tensor names -> ours (the rest of the name is ".weight" on both sides).
LAYER_TENSORS = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def open_gguf(path: str | Path):
    """``gguf.GGUFReader`` of ``path``; a missing, truncated or malformed file is a one-line error."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise LlmlabError(f"{path}: GGUF file not found")
    try:
        return gguf.GGUFReader(str(path))
    except ValueError as e:  # the reader raises ValueError for bad magic, short data and unknown enum values
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "GGMLQuantizationType" in msg:
            raise LlmlabError(f"{path}: a tensor type this gguf package does not know ({msg})") from None
        raise LlmlabError(f"{path}: not a readable GGUF file, truncated or malformed ({msg})") from None
    except (OSError, IndexError, KeyError, struct.error) as e:
        raise LlmlabError(f"{path}: not a readable GGUF file, truncated or malformed ({type(e).__name__}: {e})") \
            from None


def _value(fields, key, default=None):
    f = fields.get(key)
    return default if f is None else f.contents()


def model_config_from_gguf(reader, where: str):
    """Our ``ModelConfig`` from a GGUF file's metadata and tensor shapes; refuses what our model cannot run."""
    from llmlab.export.gguf import llama3_scaling_from_factors
    from llmlab.model.gpt import ModelConfig

    fields = reader.fields
    arch = _value(fields, "general.architecture")
    if arch != "llama":
        raise LlmlabError(f"{where}: architecture {arch!r} is not in the Llama family; llmlab imports GGUF "
                          f"architecture 'llama' (Llama, Mistral and their fine-tunes)")

    def hp(name, default=None):
        v = _value(fields, f"llama.{name}", default)
        if v is None:
            raise LlmlabError(f"{where}: missing metadata llama.{name}")
        return v

    tensors = {t.name: t for t in reader.tensors}
    if "token_embd.weight" not in tensors:
        raise LlmlabError(f"{where}: no token_embd.weight tensor")
    d, n_head = int(hp("embedding_length")), int(hp("attention.head_count"))
    head_dim = int(hp("attention.key_length", d // n_head))
    problems = []
    if int(_value(fields, "llama.expert_count", 0) or 0) > 0:
        problems.append(f"{_value(fields, 'llama.expert_count')} experts (a mixture of experts)")
    if int(hp("attention.value_length", head_dim)) != head_dim:
        problems.append(f"value head size {hp('attention.value_length')} != key head size {head_dim}")
    if int(hp("rope.dimension_count", head_dim)) != head_dim:
        problems.append(f"RoPE on {hp('rope.dimension_count')} of {head_dim} head dimensions")
    scaling_type = _value(fields, "llama.rope.scaling.type", "none")
    if scaling_type not in ("none", None):
        problems.append(f"RoPE scaling {scaling_type!r} (llmlab has Llama-3's)")
    known = {"token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight"}
    n_layer = int(hp("block_count"))
    known |= {f"blk.{i}.{k}.weight" for i in range(n_layer) for k in LAYER_TENSORS}
    other = sorted(set(tensors) - known)
    if other:
        problems.append(f"tensors a Llama model does not have ({', '.join(other[:3])})")
    scaling = None
    if "rope_freqs.weight" in tensors:
        try:
            scaling = llama3_scaling_from_factors(
                _dequantize(tensors["rope_freqs.weight"], where), head_dim, float(hp("rope.freq_base", 10000.0)),
                _value(fields, "llama.rope.scaling.original_context_length"), int(hp("context_length")))
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise LlmlabError(f"{where}: unsupported by llmlab's model: " + "; ".join(problems))
    vocab = int(tensors["token_embd.weight"].shape[-1])  # GGUF lists dimensions innermost first: (d, vocab)
    return ModelConfig(
        vocab_size=vocab, n_layer=n_layer, n_head=n_head, n_kv_head=int(hp("attention.head_count_kv", n_head)),
        d_model=d, ffn_hidden=int(hp("feed_forward_length")), max_seq_len=int(hp("context_length")),
        rope_theta=float(hp("rope.freq_base", 10000.0)),
        norm_eps=float(hp("attention.layer_norm_rms_epsilon", 1e-5)),
        tie_embeddings="output.weight" not in tensors, head_dim=head_dim, rope_scaling=scaling,
        extra={"imported_from": where, "architecture": "llama (GGUF)"},
    )


def _dequantize(t, where: str):
    """A reader tensor as float32 numpy in PyTorch's (out, in) layout."""
    import gguf
    import numpy as np

    kind = gguf.GGMLQuantizationType(t.tensor_type)
    if kind.name not in SUPPORTED_TYPES:
        raise LlmlabError(f"{where}: tensor {t.name} has type {kind.name}; llmlab imports {', '.join(SUPPORTED_TYPES)}")
    shape = tuple(int(n) for n in reversed(t.shape))  # numpy order: outermost first
    if kind == gguf.GGMLQuantizationType.F32:
        return np.asarray(t.data).reshape(shape)
    return gguf.quants.dequantize(np.asarray(t.data), kind).reshape(shape).astype(np.float32, copy=False)


def unpermute_rope(w, n_heads: int):
    """Rows of a Q or K projection (n_heads * head_dim, d) from llama.cpp's interleaved RoPE order back to
    rotate-half order: the inverse of ``gguf.permute_rope``."""
    out_dim, d = w.shape
    hd = out_dim // n_heads
    # (heads, hd/2, 2, d) -> (heads, 2, hd/2, d): row 2j + h goes back to row j of half h.
    return w.reshape(n_heads, hd // 2, 2, d).swapaxes(1, 2).reshape(out_dim, d)


def read_gguf(path: str | Path):
    """``(ModelConfig, state dict of float32 tensors under our names, reader)`` of a GGUF file."""
    import torch

    path = Path(path)
    reader = open_gguf(path)
    config = model_config_from_gguf(reader, str(path))
    tensors = {t.name: t for t in reader.tensors}
    sd = {}

    def put(ours: str, theirs: str, heads: int = 0):
        w = _dequantize(tensors[theirs], str(path))
        if heads:
            w = unpermute_rope(w, heads)
        sd[ours] = torch.from_numpy(w.copy() if not w.flags.writeable or not w.flags.c_contiguous else w)

    put("embed_tokens.weight", "token_embd.weight")
    put("norm.weight", "output_norm.weight")
    if not config.tie_embeddings:
        put("lm_head.weight", "output.weight")
    for i in range(config.n_layer):
        for theirs, ours in LAYER_TENSORS.items():
            name = f"blk.{i}.{theirs}.weight"
            if name not in tensors:
                raise LlmlabError(f"{path}: missing tensor {name}")
            heads = config.n_head if theirs == "attn_q" else config.n_kv_head if theirs == "attn_k" else 0
            put(f"layers.{i}.{ours}.weight", name, heads)
    return config, sd, reader


def _int8_rows(t, where: str):
    """A reader tensor of a linear layer as (q (out, in) int8, scale (out,)), one scale per row: Q8_0 blocks
    (34 bytes: an f16 scale, 32 int8) are rescaled to the row's scale without a float32 copy of the model
    (``int8.from_blocks``); any other type is dequantized (this tensor only) and quantized by rows."""
    import gguf
    import numpy as np
    import torch

    from llmlab.model.kernels.int8 import from_blocks, quantize_rows

    if gguf.GGMLQuantizationType(t.tensor_type) != gguf.GGMLQuantizationType.Q8_0:
        return quantize_rows(torch.from_numpy(np.array(_dequantize(t, where), dtype=np.float32)))
    out, inp = (int(n) for n in reversed(t.shape))
    raw = np.asarray(t.data).reshape(out, inp // 32, 34)
    d = torch.from_numpy(np.ascontiguousarray(raw[..., :2]).view(np.float16)[..., 0])  # (out, blocks)
    qb = torch.from_numpy(np.ascontiguousarray(raw[..., 2:]).view(np.int8))  # (out, blocks, 32)
    return from_blocks(d, qb)


def load_gguf_int8(path: str | Path, method: str | None = None):
    """``(GPT, reader)``: the GGUF model with int8 linear layers (``model/kernels/int8.py``) read straight from
    its Q8_0 (or other) tensors, the embedding table and norms in float32. Tied embeddings: the head gets its
    own int8 rows of the table. Nothing is written."""
    import numpy as np
    import torch

    from llmlab.model.gpt import GPT, rope_tables
    from llmlab.model.kernels import convert
    from llmlab.model.kernels.int8 import Int8Linear

    path = Path(path)
    reader = open_gguf(path)
    config = model_config_from_gguf(reader, str(path))
    tensors = {t.name: t for t in reader.tensors}
    with torch.device("meta"):
        model = GPT(config)

    def floats(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(_dequantize(tensors[name], str(path)), dtype=np.float32))

    def linear(parent, attr: str, name: str, heads: int = 0) -> None:
        if name not in tensors:
            raise LlmlabError(f"{path}: missing tensor {name}")
        q, scale = _int8_rows(tensors[name], str(path))
        if heads:  # llama.cpp's interleaved RoPE rows back to rotate-half order; a row keeps its scale
            order = torch.from_numpy(unpermute_rope(np.arange(q.shape[0])[:, None], heads)[:, 0].copy())
            q, scale = q[order], scale[order]
        setattr(parent, attr, Int8Linear.from_int8(q, scale, method))

    sd = {"embed_tokens.weight": floats("token_embd.weight"), "norm.weight": floats("output_norm.weight")}
    for i, blk in enumerate(model.layers):
        sd[f"layers.{i}.input_layernorm.weight"] = floats(f"blk.{i}.attn_norm.weight")
        sd[f"layers.{i}.post_attention_layernorm.weight"] = floats(f"blk.{i}.ffn_norm.weight")
        a, m = blk.self_attn, blk.mlp
        linear(a, "q_proj", f"blk.{i}.attn_q.weight", config.n_head)
        linear(a, "k_proj", f"blk.{i}.attn_k.weight", config.n_kv_head)
        linear(a, "v_proj", f"blk.{i}.attn_v.weight")
        linear(a, "o_proj", f"blk.{i}.attn_output.weight")
        linear(m, "gate_proj", f"blk.{i}.ffn_gate.weight")
        linear(m, "up_proj", f"blk.{i}.ffn_up.weight")
        linear(m, "down_proj", f"blk.{i}.ffn_down.weight")
    linear(model, "lm_head", "token_embd.weight" if config.tie_embeddings else "output.weight")
    model.load_state_dict(sd, strict=False, assign=True)
    model.rope_cos, model.rope_sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta,
                                                 config.rope_scaling)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise LlmlabError(f"{path}: weights not read for {left[:3]}")
    convert(model, "cpu")
    return model.eval(), reader


def import_gguf(path: str | Path, out_run: str | Path) -> Path:
    """Write the GGUF model file ``path`` as the run folder ``out_run`` (weights dequantized to float32, the
    tokenizer through ``imported_tokenizer.write_tokenizer``); returns ``out_run``."""
    from llmlab.export.imported_tokenizer import GGUFTokenizerFields, write_tokenizer
    from llmlab.runs import TOKENIZER_DIR, model_from_state_dict, save_run_model

    path, out_run = Path(path), Path(out_run)
    config, sd, reader = read_gguf(path)
    model = model_from_state_dict(config, sd, str(path), "the GGUF metadata")
    write_tokenizer(out_run / TOKENIZER_DIR, GGUFTokenizerFields(reader.fields, path), config.vocab_size)
    save_run_model(out_run, model)
    return out_run
