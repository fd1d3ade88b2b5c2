"""GGUF export for llama.cpp (and everything built on it: llama-cpp-python, ollama, LM Studio).

    llmlab export gguf --model runs/sft --out model.gguf --dtype q8_0
    llama-cli -m model.gguf -p "To be, or not"          # or llama_cpp.Llama(model_path="model.gguf")

What llama.cpp needs, and how we provide it:

* Architecture ``llama`` with its hyperparameters (context length, width, depth, FFN width, head counts, RoPE
  base and dimension, RMSNorm epsilon, vocabulary size).
* Tensors under llama.cpp's names (``token_embd``, ``blk.N.attn_q`` ... ``output_norm``, ``output`` only when
  the head is untied -- llama.cpp reuses ``token_embd`` otherwise). GGUF lists dimensions innermost first;
  the ``gguf`` package reverses numpy's shapes for us, so weights are passed in PyTorch's (out, in) layout.
* The Q and K projections permuted: our RoPE (like HF's) rotates dimension ``j`` with ``j + head_dim/2``,
  llama.cpp's ``llama`` rope rotates ``2j`` with ``2j + 1``. Reordering the output rows of W_q/W_k within
  each head (row ``j`` -> ``2j``, row ``j + head_dim/2`` -> ``2j + 1``) makes the two compute the same
  attention scores: q.k is unchanged by applying the same permutation to both, and RoPE then pairs the
  same values.
* The tokenizer as llama.cpp's ``gpt2`` model (byte-level BPE): tokens as GPT-2 byte-level strings, the merges
  in rank order, token types (normal; control for the special tokens), bos/eos/eot/pad ids, and the chat
  template. The pre-tokenizer id is ``llama-bpe``: llama.cpp's Llama-3 split, whose regex is equivalent to the
  GPT-4 pattern our tokenizer uses (same branches; the possessive quantifiers in ours cannot change a match
  there, and ``\\s*[\\r\\n]+`` ends at the same last newline as our ``\\s*[\\r\\n]``). One known difference:
  llama.cpp spells the contractions as ASCII ``'[sS]`` etc., so ``'`` + U+017F (long s) splits differently.
  A tokenizer trained with ``--pattern gpt2`` gets ``gpt-2`` (llama.cpp's GPT-2 split, the same regex).
  tests/export/test_gguf.py checks tokenization and greedy generation against llama.cpp.
* ``--dtype``: ``f32`` (exact weights), ``f16`` (2-D weights in half precision, norms in f32) or ``q8_0``
  (2-D weights whose rows are a multiple of 32 quantized to 8 bits + one f16 scale per 32; others f16).
  llama.cpp keeps its KV cache in f16 unless told otherwise (``-ctk f32 -ctv f32``; ``type_k``/``type_v`` in
  llama-cpp-python); that moves logits by ~1e-3 relative, enough to flip a near-tie in a long greedy run.
"""

from __future__ import annotations

from pathlib import Path

from llmlab.errors import LlmlabError

DTYPES = ("f32", "f16", "q8_0")


def pre_tokenizer_id(pattern: str) -> str:
    """llama.cpp's name for our split regex: ``llama-bpe`` for GPT-4's, ``gpt-2`` for GPT-2's."""
    from llmlab.tokenizer.bpe import GPT2_PATTERN, GPT4_PATTERN

    ids = {GPT4_PATTERN: "llama-bpe", GPT2_PATTERN: "gpt-2"}
    if pattern not in ids:
        raise LlmlabError("llama.cpp has no pre-tokenizer for this tokenizer's custom split pattern; GGUF export "
                          "supports the gpt4 (default) and gpt2 patterns")
    return ids[pattern]


def permute_rope(w, n_heads: int):
    """Rows of a Q or K projection (n_heads * head_dim, d) from rotate-half to interleaved RoPE order."""
    out_dim, d = w.shape
    hd = out_dim // n_heads
    # (heads, 2 halves, hd/2, d) -> (heads, hd/2, 2, d): row j of half h lands at 2j + h.
    return w.reshape(n_heads, 2, hd // 2, d).swapaxes(1, 2).reshape(out_dim, d)


def gguf_tensors(model) -> list[tuple[str, object]]:
    """``(llama.cpp name, fp32 numpy array)`` for every weight, Q/K permuted."""
    from llmlab.runs import model_state_dict

    c = model.config
    sd = {k: v.float().numpy() for k, v in model_state_dict(model).items()}
    out = [("token_embd.weight", sd["embed_tokens.weight"])]
    names = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    for i in range(c.n_layer):
        for ours, theirs in names.items():
            w = sd[f"layers.{i}.{ours}.weight"]
            if ours == "self_attn.q_proj":
                w = permute_rope(w, c.n_head)
            elif ours == "self_attn.k_proj":
                w = permute_rope(w, c.n_kv_head)
            out.append((f"blk.{i}.{theirs}.weight", w))
    out.append(("output_norm.weight", sd["norm.weight"]))
    if not c.tie_embeddings:
        out.append(("output.weight", sd["lm_head.weight"]))
    return out


def export_gguf(run_dir: str | Path, out_file: str | Path, dtype: str = "f32") -> Path:
    """Write the run as one GGUF file of ``dtype`` (``f32``, ``f16`` or ``q8_0``); returns its path."""
    if dtype not in DTYPES:
        raise LlmlabError(f"unknown GGUF dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    import gguf
    import numpy as np

    from llmlab.chat.template import CHAT_TEMPLATE
    from llmlab.runs import load_run
    from llmlab.tokenizer.hf import hf_tokens_and_merges
    from llmlab.utils.io import atomic_path

    model, tok = load_run(run_dir)
    c = model.config
    pre = pre_tokenizer_id(tok.pattern)
    tokens, merges = hf_tokens_and_merges(tok)
    if len(set(tokens)) != len(tokens):
        raise LlmlabError(f"{run_dir}: two tokens have the same bytes; llama.cpp needs distinct token strings")
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype]

    with atomic_path(out_file) as tmp:
        w = gguf.GGUFWriter(str(tmp), "llama")
        w.add_name(Path(run_dir).resolve().name)
        w.add_context_length(c.max_seq_len)
        w.add_embedding_length(c.d_model)
        w.add_block_count(c.n_layer)
        w.add_feed_forward_length(c.ffn_hidden)
        w.add_head_count(c.n_head)
        w.add_head_count_kv(c.n_kv_head)
        w.add_rope_dimension_count(c.head_dim)
        w.add_rope_freq_base(float(c.rope_theta))
        w.add_layer_norm_rms_eps(float(c.norm_eps))
        w.add_vocab_size(c.vocab_size)
        w.add_file_type(file_type)
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)

        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types([gguf.TokenType.CONTROL if tok.is_special(i) else gguf.TokenType.NORMAL
                           for i in range(tok.vocab_size)])
        w.add_token_merges([f"{a} {b}" for a, b in merges])
        w.add_bos_token_id(tok.bos_id)
        w.add_eos_token_id(tok.end_id)  # the assistant's stop token; <|endoftext|> is also end-of-generation
        w.add_eot_token_id(tok.end_id)
        w.add_pad_token_id(tok.pad_id)
        w.add_add_bos_token(True)  # every document starts with <|bos|>, as in our training data
        w.add_add_eos_token(False)
        w.add_chat_template(CHAT_TEMPLATE)

        for name, arr in gguf_tensors(model):
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if arr.ndim == 1 or dtype == "f32":
                w.add_tensor(name, arr)
            elif dtype == "q8_0" and arr.shape[-1] % 32 == 0:
                q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
                w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)  # shape from bytes
            else:
                w.add_tensor(name, arr.astype(np.float16))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return Path(out_file)
