"""GGUF export: the file reads back (gguf's reader) with llama metadata, tokenizer and tensors; the Q/K
permutation is exactly llama.cpp's RoPE convention; and, in the ``llamacpp`` tier, llama.cpp itself tokenizes
our prompts into our ids and continues them greedily with our tokens.

    .venv/bin/pytest tests/export/test_gguf.py -q                  # add -m "not llamacpp" to skip llama.cpp
"""

from __future__ import annotations

import numpy as np
import pytest

from llmlab.cli import main

from .conftest import PROMPTS, greedy_ours, make_run

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def gguf_files(tiny_run, tiny_run_untied, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    files = {}
    for dtype in ("f32", "f16", "q8_0"):
        files[("tied", dtype)] = out / f"tied-{dtype}.gguf"
        assert main(["export", "gguf", "--model", str(tiny_run[0]), "--out", str(files[("tied", dtype)]),
                     "--dtype", dtype]) == 0
    files[("untied", "f32")] = out / "untied-f32.gguf"
    assert main(["export", "gguf", "--model", str(tiny_run_untied[0]), "--out", str(files[("untied", "f32")])]) == 0
    return files


def _field(reader, key):
    f = reader.fields[key]
    if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]].tolist()[0]


def test_metadata_and_tokenizer_read_back(gguf_files, tiny_run):
    _, model, tok = tiny_run
    c = model.config
    r = gguf.GGUFReader(gguf_files[("tied", "f32")])
    assert _field(r, "general.architecture") == "llama"
    want = {"llama.context_length": c.max_seq_len, "llama.embedding_length": c.d_model,
            "llama.block_count": c.n_layer, "llama.feed_forward_length": c.ffn_hidden,
            "llama.attention.head_count": c.n_head, "llama.attention.head_count_kv": c.n_kv_head,
            "llama.rope.dimension_count": c.head_dim, "llama.vocab_size": c.vocab_size,
            "tokenizer.ggml.bos_token_id": tok.bos_id, "tokenizer.ggml.eos_token_id": tok.end_id,
            "tokenizer.ggml.padding_token_id": tok.pad_id}
    assert {k: _field(r, k) for k in want} == want
    assert _field(r, "llama.rope.freq_base") == pytest.approx(c.rope_theta)
    assert _field(r, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(c.norm_eps)
    assert _field(r, "tokenizer.ggml.model") == "gpt2" and _field(r, "tokenizer.ggml.pre") == "llama-bpe"
    tokens = _field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == tok.vocab_size and tokens[tok.bos_id] == "<|bos|>" and tokens[ord("a")] == "a"
    assert tokens[ord(" ")] == "Ġ" and tokens[ord("\n")] == "Ċ"  # GPT-2 byte-level characters
    types = _field(r, "tokenizer.ggml.token_type")
    assert [t == gguf.TokenType.CONTROL for t in types] == [tok.is_special(i) for i in range(tok.vocab_size)]
    merges = _field(r, "tokenizer.ggml.merges")
    assert len(merges) == len(tok.merges)
    a, b = tok.merges[0]
    assert merges[0] == f"{tokens[a]} {tokens[b]}"


@pytest.mark.parametrize("kind,dtype", [("tied", "f32"), ("tied", "f16"), ("tied", "q8_0"), ("untied", "f32")])
def test_tensors_read_back(gguf_files, tiny_run, tiny_run_untied, kind, dtype):
    from gguf.quants import dequantize

    from llmlab.export.gguf import permute_rope

    _, model, _ = tiny_run if kind == "tied" else tiny_run_untied
    c = model.config
    r = gguf.GGUFReader(gguf_files[(kind, dtype)])
    tensors = {t.name: t for t in r.tensors}
    assert ("output.weight" in tensors) == (not c.tie_embeddings)
    assert len(tensors) == 2 + 9 * c.n_layer + (0 if c.tie_embeddings else 1)
    qtype = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
             "q8_0": gguf.GGMLQuantizationType.Q8_0}[dtype]
    tol = {"f32": 0.0, "f16": 1e-3, "q8_0": 2e-2}[dtype]
    checks = {
        "token_embd.weight": model.embed_tokens.weight,
        "blk.1.attn_q.weight": permute_rope(model.layers[1].self_attn.q_proj.weight, c.n_head),
        "blk.0.attn_k.weight": permute_rope(model.layers[0].self_attn.k_proj.weight, c.n_kv_head),
        "blk.0.ffn_down.weight": model.layers[0].mlp.down_proj.weight,
    }
    for name, want in checks.items():
        t = tensors[name]
        assert t.tensor_type == qtype, name
        got = dequantize(np.asarray(t.data), t.tensor_type).reshape(want.shape)
        np.testing.assert_allclose(got, want.detach().numpy(), atol=tol, rtol=0, err_msg=name)
    norm = tensors["output_norm.weight"]
    assert norm.tensor_type == gguf.GGMLQuantizationType.F32  # norms stay f32 at every dtype
    np.testing.assert_array_equal(np.asarray(norm.data), model.norm.weight.detach().numpy())


def test_permutation_turns_rotate_half_into_interleaved_rope():
    """Attention scores with rotate-half RoPE on W equal those with interleaved RoPE on permute_rope(W)."""
    from llmlab.export.gguf import permute_rope
    from llmlab.model.gpt import apply_rope, rope_tables

    torch.manual_seed(0)
    H, hd, d, T = 3, 8, 16, 5
    wq, wk, x = torch.randn(H * hd, d), torch.randn(H * hd, d), torch.randn(T, d)
    cos, sin = rope_tables(hd, T, 10000.0)  # (T, hd)

    def half(w):  # ours: (H, T, hd)
        return apply_rope((x @ w.T).view(T, H, hd).transpose(0, 1), cos[None], sin[None])

    def interleaved(w):  # llama.cpp's "norm" rope: rotate pairs (2j, 2j + 1) by angle_j
        y = (x @ w.T).view(T, H, hd // 2, 2).transpose(0, 1)
        c, s = cos[:, : hd // 2][None], sin[:, : hd // 2][None]
        a, b = y[..., 0], y[..., 1]
        return torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)

    ours = half(wq) @ half(wk).transpose(1, 2)
    theirs = interleaved(permute_rope(wq, H)) @ interleaved(permute_rope(wk, H)).transpose(1, 2)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-5)
    # and the permutation is not the identity, so the test can fail
    assert not torch.equal(permute_rope(wq, H), wq)


def test_unknown_dtype_is_an_error(tiny_run, tmp_path, capsys):
    assert main(["export", "gguf", "--model", str(tiny_run[0]), "--out", str(tmp_path / "m.gguf"),
                 "--dtype", "q4_k"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llmlab: error: unknown GGUF dtype 'q4_k'") and "\n" not in err
    assert not (tmp_path / "m.gguf").exists()


def test_custom_split_pattern_is_an_error(tmp_path, capsys):
    make_run(tmp_path / "run", pattern=r"\p{L}+|\s+|[^\s\p{L}]+")
    for fmt, out in (("gguf", "m.gguf"), ("bin", "m.bin")):
        assert main(["export", fmt, "--model", str(tmp_path / "run"), "--out", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("llmlab: error: ") and "pattern" in err and "\n" not in err


# ------------------------------------------------------------------------------------------ llama.cpp itself

TOKENIZE_TEXTS = PROMPTS + ["  spaces\r\n\r\n  x", "I'LL WE'VE they'd", "tail   ", "\n\n\n", "x = [1, 22, 333];"]


@pytest.fixture(scope="module")
def llama(gguf_files):
    llama_cpp = pytest.importorskip("llama_cpp")

    def load(kind="tied", dtype="f32", **kw):
        if dtype == "f32":  # llama.cpp's KV cache is f16 by default; f32 keeps the whole computation fp32
            kw.update(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
        return llama_cpp.Llama(model_path=str(gguf_files[(kind, dtype)]), n_ctx=160, n_threads=1, n_batch=160,
                               verbose=False, **kw)
    return load


def _llama_greedy(llm, ids, n, stop):
    llm.reset()
    out = []
    for t in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
        out.append(t)
        if len(out) == n or t in stop:
            break
    return out


@pytest.mark.llamacpp
def test_llama_cpp_tokenizes_like_us(llama, tiny_run):
    import llama_cpp

    _, _, tok = tiny_run
    llm = llama()
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    for i in range(tok.vocab_size):  # llama.cpp stops at both end tokens, and only at those
        assert llama_cpp.llama_vocab_is_eog(vocab, i) == (i in (tok.end_id, tok.eot_id)), i
        assert llama_cpp.llama_vocab_is_control(vocab, i) == tok.is_special(i), i
    for text in TOKENIZE_TEXTS:
        assert llm.tokenize(text.encode(), add_bos=True, special=False) == [tok.bos_id] + tok.encode(text), text
        assert llm.detokenize(tok.encode(text)).decode() == text


@pytest.mark.llamacpp
def test_llama_cpp_gpt2_pattern_tokenizes_like_us(tmp_path):
    """A tokenizer trained with GPT-2's split exports as llama.cpp's ``gpt-2`` pre-tokenizer."""
    llama_cpp = pytest.importorskip("llama_cpp")
    _, tok = make_run(tmp_path / "run", pattern="gpt2")
    assert main(["export", "gguf", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "m.gguf")]) == 0
    llm = llama_cpp.Llama(model_path=str(tmp_path / "m.gguf"), n_ctx=64, n_threads=1, verbose=False)
    for text in TOKENIZE_TEXTS:
        assert llm.tokenize(text.encode(), add_bos=True, special=False) == [tok.bos_id] + tok.encode(text), text


@pytest.mark.llamacpp
@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_llama_cpp_greedy_matches_ours_f32(llama, tiny_run, tiny_run_untied, kind):
    _, model, tok = tiny_run if kind == "tied" else tiny_run_untied
    llm = llama(kind)
    stop = {tok.end_id, tok.eot_id}
    for prompt in PROMPTS:
        ids = [tok.bos_id] + tok.encode(prompt)
        assert _llama_greedy(llm, ids, 32, stop) == greedy_ours(model, ids, 32, stop), prompt


@pytest.mark.llamacpp
def test_llama_cpp_f32_logits_match_ours(llama, tiny_run_untied):
    _, model, tok = tiny_run_untied
    llm = llama("untied", "f32", logits_all=True)
    for prompt in PROMPTS:
        ids = [tok.bos_id] + tok.encode(prompt)
        llm.reset()
        llm.eval(ids)
        with torch.no_grad():
            ours = model(torch.tensor([ids]))[0].numpy()
        np.testing.assert_allclose(np.asarray(llm.scores[: len(ids)]), ours, atol=1e-4, rtol=0)


@pytest.mark.llamacpp
def test_llama_cpp_q8_0_stays_close(llama, tiny_run):
    """q8_0 is lossy: llama.cpp's logits over the prompt stay within 5% of our largest logit."""
    _, model, tok = tiny_run
    llm = llama("tied", "q8_0", logits_all=True)
    ids = [tok.bos_id] + tok.encode(PROMPTS[0])
    llm.reset()
    llm.eval(ids)
    theirs = np.asarray(llm.scores[: len(ids)])
    with torch.no_grad():
        ours = model(torch.tensor([ids]))[0].numpy()
    err = np.abs(theirs - ours).max()
    assert 0 < err < 0.05 * np.abs(ours).max()  # not bit-exact (it is quantized), but close
