"""Importing Llama-family models: Hugging Face folders (LlamaForCausalLM, MistralForCausalLM) and GGUF files
(F32/F16/BF16, Q8_0, Q4_0/1, Q5_0/1, K-quants) built in the test with random weights, compared with transformers
on the same (dequantized) weights, with llama.cpp in the ``llamacpp`` tier; bad files are one-line errors; an
imported run exports back to both formats.

    .venv/bin/pytest tests/export/test_import.py -q              # add -m "not llamacpp" to skip llama.cpp
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlab.cli import main

from .conftest import TRAIN_TEXT

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")

LLAMA3 = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 32}
# name -> (architecture, config overrides). Context 160; the tokenizer below has 320 tokens.
VARIANTS = {
    "llama-tied-gqa": ("llama", dict(num_key_value_heads=2, tie_word_embeddings=True)),
    "llama-untied": ("llama", dict(num_key_value_heads=4, tie_word_embeddings=False)),
    "llama3-rope-odd-head": ("llama", dict(num_key_value_heads=2, head_dim=24, tie_word_embeddings=False,
                                           rope_parameters={"rope_theta": 5000.0, **LLAMA3})),
    "mistral": ("mistral", dict(num_key_value_heads=2, tie_word_embeddings=False, sliding_window=None)),
}


@pytest.fixture(scope="module")
def hf_tokenizer_file(tmp_path_factory):
    """A byte-level BPE trained here with HF ``tokenizers`` (GPT-2 style, two special tokens): tokenizer.json."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tk = tokenizers.Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator([TRAIN_TEXT], trainer)
    path = tmp_path_factory.mktemp("hf_tok") / "tokenizer.json"
    tk.save(str(path))
    return path


def build_hf(path, arch: str, tokenizer_file, seed: int = 0, d: int = 64, ffn: int = 128, **overrides):
    """A random ``LlamaForCausalLM`` / ``MistralForCausalLM`` saved to ``path`` with the tokenizer; returns it."""
    import shutil

    vocab = tokenizers.Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    kw = dict(vocab_size=vocab, hidden_size=d, intermediate_size=ffn, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=160, rms_norm_eps=1e-5, initializer_range=0.15, bos_token_id=0,
              eos_token_id=1, pad_token_id=None)
    kw.update(overrides)
    torch.manual_seed(seed)
    if arch == "mistral":
        model = transformers.MistralForCausalLM(transformers.MistralConfig(**kw))
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**kw))
    with torch.no_grad():  # non-trivial norm weights
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.3)
    model.eval()
    transformers.utils.logging.disable_progress_bar()  # stderr holds only the CLI's errors
    model.save_pretrained(str(path))
    shutil.copyfile(tokenizer_file, path / "tokenizer.json")
    (path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                             "tokenizer_class": "PreTrainedTokenizerFast"}))
    return model


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def our_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]))[0]


def sample_ids(vocab: int, n: int = 48, seed: int = 0) -> list[int]:
    return torch.randint(2, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


# ----------------------------------------------------------------------------------------------------------
# Hugging Face folders


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_hf_import_gives_transformers_logits_and_greedy_tokens(variant, hf_tokenizer_file, tmp_path):
    from llmlab.infer import Engine, SamplingParams
    from llmlab.runs import load_model

    arch, kw = VARIANTS[variant]
    hf = build_hf(tmp_path / "hf", arch, hf_tokenizer_file, **kw)
    assert main(["import", "hf", "--path", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    ours = load_model(tmp_path / "run")
    c = ours.config
    assert c.head_dim == kw.get("head_dim", 16) and c.tie_embeddings == kw["tie_word_embeddings"]
    assert (c.rope_scaling is not None) == ("rope_parameters" in kw)
    ids = sample_ids(c.vocab_size, 150)  # past the scaled RoPE's original context (32)
    torch.testing.assert_close(our_logits(ours, ids), hf_logits(hf, ids), atol=1e-4, rtol=0)
    # The engine (fused forward, KV cache) continues as transformers' greedy generate does.
    prompt = ids[:20]
    out = Engine(ours).generate([prompt], SamplingParams(temperature=0, max_new_tokens=32, ignore_eos=True))
    with torch.no_grad():
        want = hf.generate(torch.tensor([prompt]), max_new_tokens=32, min_new_tokens=32, do_sample=False,
                           eos_token_id=None, pad_token_id=0)[0, 20:].tolist()
    assert out[0].samples[0].token_ids == want


def test_mistral_sliding_window_caps_the_context(hf_tokenizer_file, tmp_path):
    """A window shorter than the context: imported with the window as context, where the two agree exactly."""
    from llmlab.runs import load_model

    hf = build_hf(tmp_path / "hf", "mistral", hf_tokenizer_file, num_key_value_heads=2, sliding_window=64)
    assert main(["import", "hf", "--path", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    ours = load_model(tmp_path / "run")
    assert ours.config.max_seq_len == 64
    ids = sample_ids(ours.config.vocab_size, 64)
    torch.testing.assert_close(our_logits(ours, ids), hf_logits(hf, ids), atol=1e-4, rtol=0)


def test_hf_import_exports_back_to_hf_and_transformers_loads_it(hf_tokenizer_file, tmp_path):
    from llmlab.runs import load_model

    arch, kw = VARIANTS["llama3-rope-odd-head"]
    hf = build_hf(tmp_path / "hf", arch, hf_tokenizer_file, **kw)
    assert main(["import", "hf", "--path", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    assert main(["export", "hf", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "back")]) == 0
    back = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "back")).eval()
    ids = sample_ids(hf.config.vocab_size, 100)
    torch.testing.assert_close(hf_logits(back, ids), hf_logits(hf, ids), atol=1e-5, rtol=0)
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "back"))
    want = tokenizers.Tokenizer.from_file(str(hf_tokenizer_file)).encode("To be, or not to be").ids
    assert tok("To be, or not to be")["input_ids"] == want
    assert load_model(tmp_path / "run").config.extra["architecture"] == "LlamaForCausalLM"


@pytest.mark.parametrize("change, message", [
    ({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}, "'qwen2' (architectures ['Qwen2ForCausalLM'])"),
    ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4}}, "RoPE scaling 'yarn'"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
])
def test_hf_import_refuses_other_architectures_in_one_line(change, message, hf_tokenizer_file, tmp_path, capsys):
    build_hf(tmp_path / "hf", "llama", hf_tokenizer_file)
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    cfg.update(change)
    (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
    assert main(["import", "hf", "--path", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llmlab: error: ") and "\n" not in err and message in err


def test_hf_import_without_a_tokenizer_is_an_error(hf_tokenizer_file, tmp_path, capsys):
    build_hf(tmp_path / "hf", "llama", hf_tokenizer_file)
    (tmp_path / "hf" / "tokenizer.json").unlink()
    assert main(["import", "hf", "--path", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no tokenizer" in err and "\n" not in err


# ----------------------------------------------------------------------------------------------------------
# GGUF files, written here as llama.cpp's converter writes them


def llama_cpp_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of Q/K rows (rotate-half -> interleaved RoPE pairs)."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_factors(hf_config) -> np.ndarray:
    """rope_freqs.weight as llama.cpp's converter computes it: plain / scaled frequency, the scaled ones from
    transformers' own llama3 RoPE function."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    hd, base = hf_config.head_dim, hf_config.rope_parameters["rope_theta"]
    inv = 1.0 / base ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    scaled = ROPE_INIT_FUNCTIONS["llama3"](hf_config, "cpu")[0].double().numpy()
    return (inv / scaled).astype(np.float32)


K_QUANTS = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
# Byte offsets of the f16 super-block scale(s) in each K-quant block (ggml-common.h), and a size for them that
# keeps random blocks' weights within ~0.2 (sub-block scale x quant is up to ~60 for Q2_K, ~4000 for Q6_K).
K_SCALES = {"Q2_K": ((80, 82), 4e-3), "Q3_K": ((108,), 1e-3), "Q4_K": ((0, 2), 2e-4), "Q5_K": ((0, 2), 1e-4),
            "Q6_K": ((208,), 4e-5)}


def encode(arr: np.ndarray, qtype: str, rng) -> tuple[np.ndarray, object]:
    """``(data, raw_dtype)`` for ``GGUFWriter.add_tensor``. K-quants, which the gguf package cannot quantize,
    get random blocks with small finite scales (the weights are whatever they dequantize to)."""
    t = gguf.GGMLQuantizationType[qtype]
    if arr.ndim == 1 or qtype == "F32":
        return arr.astype(np.float32), None
    if qtype == "F16":
        return arr.astype(np.float16), None
    if qtype in K_QUANTS:
        block, nbytes = gguf.GGML_QUANT_SIZES[t]
        rows, cols = arr.shape
        data = rng.integers(0, 256, size=(rows, cols // block, nbytes), dtype=np.uint8)
        offsets, top = K_SCALES[qtype]
        for off in offsets:
            scale = rng.uniform(0.25 * top, top, size=(rows, cols // block)).astype(np.float16)
            data[:, :, off:off + 2] = scale.view(np.uint8).reshape(rows, cols // block, 2)
        return data.reshape(rows, -1), t
    return gguf.quants.quantize(arr.astype(np.float32), t), t


def write_gguf(path, hf, tokenizer_file, qtype: str = "F32", arch: str = "llama", tokenizer: bool = True,
               seed: int = 0) -> None:
    """The HF model as a GGUF file: llama hyperparameters, the tokenizer as a ``gpt2`` vocabulary, tensors under
    llama.cpp's names with Q/K permuted, 2-D tensors in ``qtype`` (norms f32)."""
    c = hf.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_rope_dimension_count(c.head_dim)
    w.add_rope_freq_base(float(c.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(float(c.rms_norm_eps))
    if tokenizer:
        data = json.loads(tokenizer_file.read_text())
        vocab = data["model"]["vocab"]
        tokens = [None] * c.vocab_size
        for s, i in vocab.items():
            tokens[i] = s
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(tokens)
        w.add_token_types([gguf.TokenType.CONTROL if i < 2 else gguf.TokenType.NORMAL for i in range(len(tokens))])
        w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]])
        w.add_bos_token_id(0)
        w.add_eos_token_id(1)
        w.add_add_bos_token(False)
    sd = {k: v.detach().float().numpy() for k, v in hf.state_dict().items()}
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    tensors = [("token_embd.weight", sd["model.embed_tokens.weight"]), ("output_norm.weight", sd["model.norm.weight"])]
    if not c.tie_word_embeddings:
        tensors.append(("output.weight", sd["lm_head.weight"]))
    if c.rope_parameters.get("rope_type") == "llama3":
        tensors.append(("rope_freqs.weight", llama3_factors(c)))
    for i in range(c.num_hidden_layers):
        for hf_name, name in names.items():
            a = sd[f"model.layers.{i}.{hf_name}.weight"]
            if name == "attn_q":
                a = llama_cpp_permute(a, c.num_attention_heads)
            elif name == "attn_k":
                a = llama_cpp_permute(a, c.num_key_value_heads)
            tensors.append((f"blk.{i}.{name}.weight", a))
    rng = np.random.default_rng(seed)
    for name, a in tensors:
        data, raw = encode(np.ascontiguousarray(a), qtype, rng)
        w.add_tensor(name, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def hf_on_gguf_weights(hf, path):
    """A copy of ``hf`` holding the GGUF file's weights, dequantized by the gguf package and un-permuted here:
    the reference for a quantized import (transformers on the same dequantized weights)."""
    import copy

    from gguf.quants import dequantize

    c = hf.config
    ref = copy.deepcopy(hf)
    r = gguf.GGUFReader(str(path))
    names = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    sd = {}
    for t in r.tensors:
        a = dequantize(np.asarray(t.data), t.tensor_type).reshape(tuple(reversed([int(n) for n in t.shape])))
        if t.name == "rope_freqs.weight":
            continue
        if t.name.startswith("blk."):
            _, i, kind, _ = t.name.split(".")
            if kind in ("attn_q", "attn_k"):  # invert llama.cpp's permutation: (H, hd/2, 2, d) -> (H, 2, hd/2, d)
                h = c.num_attention_heads if kind == "attn_q" else c.num_key_value_heads
                a = a.reshape(h, -1, 2, a.shape[-1]).swapaxes(1, 2).reshape(a.shape)
            sd[f"model.layers.{i}.{names[kind]}.weight"] = torch.from_numpy(np.array(a, dtype=np.float32))
        else:
            key = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                   "output.weight": "lm_head.weight"}[t.name]
            sd[key] = torch.from_numpy(np.array(a, dtype=np.float32))
    ref.load_state_dict(sd, strict=False)
    if c.tie_word_embeddings:
        ref.tie_weights()
    return ref.eval()


def import_variant(variant, tokenizer_file, tmp_path):
    """``(hf model, our model)``: the variant built with transformers, written as an f32 GGUF file (m.gguf) and
    imported from it with ``llmlab import gguf``."""
    from llmlab.runs import load_model

    arch, kw = VARIANTS[variant]
    hf = build_hf(tmp_path / "hf", arch, tokenizer_file, **kw)
    write_gguf(tmp_path / "m.gguf", hf, tokenizer_file)
    assert main(["import", "gguf", "--path", str(tmp_path / "m.gguf"), "--out", str(tmp_path / "run")]) == 0
    return hf, load_model(tmp_path / "run")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gguf_f32_import_gives_transformers_logits(variant, hf_tokenizer_file, tmp_path):
    hf, ours = import_variant(variant, hf_tokenizer_file, tmp_path)
    kw = VARIANTS[variant][1]
    # Llama-3 scaling comes back from rope_freqs.weight as parameters that give the same frequencies.
    assert (ours.config.rope_scaling is not None) == ("rope_parameters" in kw)
    ids = sample_ids(ours.config.vocab_size, 150)
    torch.testing.assert_close(our_logits(ours, ids), hf_logits(hf, ids), atol=1e-4, rtol=0)


@pytest.mark.parametrize("qtype", ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", *K_QUANTS])
def test_gguf_quantized_import_equals_transformers_on_the_dequantized_weights(qtype, hf_tokenizer_file, tmp_path):
    from llmlab.runs import load_model

    # K-quant blocks are 256 wide: every row length (d 256, FFN 512) a multiple of it.
    hf = build_hf(tmp_path / "hf", "llama", hf_tokenizer_file, d=256, ffn=512, num_key_value_heads=2,
                  tie_word_embeddings=False)
    write_gguf(tmp_path / "m.gguf", hf, hf_tokenizer_file, qtype=qtype)
    assert main(["import", "gguf", "--path", str(tmp_path / "m.gguf"), "--out", str(tmp_path / "run")]) == 0
    ours = load_model(tmp_path / "run")
    ref = hf_on_gguf_weights(hf, tmp_path / "m.gguf")
    ids = sample_ids(ours.config.vocab_size, 64)
    # float32 rounding of a 256-wide model with logits up to ~10: 1e-4 absolute plus 1e-4 relative
    torch.testing.assert_close(our_logits(ours, ids), hf_logits(ref, ids), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(our_logits(ours, ids), hf_logits(hf, ids), atol=1e-4, rtol=0)  # it is lossy


def test_gguf_import_writes_the_tokenizer_metadata_and_exports_back(hf_tokenizer_file, tmp_path):
    from llmlab.export.imported_tokenizer import imported_source
    from llmlab.runs import load_model

    hf, _ = import_variant("llama3-rope-odd-head", hf_tokenizer_file, tmp_path)
    assert imported_source(tmp_path / "run" / "tokenizer") == "gguf"
    # Back to GGUF: the same tensors (Q/K permuted again, rope_freqs) and the same tokenizer metadata.
    assert main(["export", "gguf", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "back.gguf")]) == 0
    a, b = gguf.GGUFReader(str(tmp_path / "m.gguf")), gguf.GGUFReader(str(tmp_path / "back.gguf"))
    ta, tb = {t.name: np.asarray(t.data) for t in a.tensors}, {t.name: np.asarray(t.data) for t in b.tensors}
    assert ta.keys() == tb.keys()
    for name in ta:
        np.testing.assert_allclose(tb[name], ta[name], rtol=1e-6, atol=0, err_msg=name)
    for key in a.fields:
        if key.startswith("tokenizer."):
            assert b.fields[key].contents() == a.fields[key].contents(), key
    # Back to HF: transformers loads it and computes the same logits; the vocabulary converts.
    assert main(["export", "hf", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "back_hf")]) == 0
    back = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "back_hf")).eval()
    ids = sample_ids(hf.config.vocab_size, 100)
    torch.testing.assert_close(hf_logits(back, ids), our_logits(load_model(tmp_path / "run"), ids), atol=1e-4,
                               rtol=0)
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "back_hf"))
    want = tokenizers.Tokenizer.from_file(str(hf_tokenizer_file)).encode("To be, or not to be").ids
    assert tok("To be, or not to be", add_special_tokens=False)["input_ids"] == want


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("llmlab: error: ") and "\n" not in err, err
    return err


def test_bad_gguf_files_are_one_line_errors(hf_tokenizer_file, tmp_path, capsys):
    hf = build_hf(tmp_path / "hf", "llama", hf_tokenizer_file)
    good = tmp_path / "m.gguf"
    write_gguf(good, hf, hf_tokenizer_file, qtype="Q8_0")
    data = good.read_bytes()

    def run(path) -> str:
        assert main(["import", "gguf", "--path", str(path), "--out", str(tmp_path / "run")]) == 2
        return _one_line(capsys)

    (tmp_path / "short.gguf").write_bytes(data[: len(data) - 100])
    assert "truncated or malformed" in run(tmp_path / "short.gguf")
    (tmp_path / "head.gguf").write_bytes(data[:200])
    assert "truncated or malformed" in run(tmp_path / "head.gguf")
    assert "not found" in run(tmp_path / "missing.gguf")
    # An unknown tensor type: the type field of the first tensor's info, right after its name and dims.
    r = gguf.GGUFReader(str(good))
    t = r.tensors[0]
    name = t.name.encode()
    at = data.index(len(name).to_bytes(8, "little") + name) + 8 + len(name) + 4 + 8 * len(t.shape)
    assert int.from_bytes(data[at:at + 4], "little") == int(t.tensor_type)
    (tmp_path / "qtype.gguf").write_bytes(data[:at] + (250).to_bytes(4, "little") + data[at + 4:])
    assert "tensor type" in run(tmp_path / "qtype.gguf")
    # Another architecture, and no tokenizer.
    write_gguf(tmp_path / "qwen.gguf", hf, hf_tokenizer_file, arch="qwen2")
    assert "architecture 'qwen2' is not in the Llama family" in run(tmp_path / "qwen.gguf")
    write_gguf(tmp_path / "notok.gguf", hf, hf_tokenizer_file, tokenizer=False)
    assert "no tokenizer" in run(tmp_path / "notok.gguf")


def test_an_unsupported_quant_type_is_named(hf_tokenizer_file, tmp_path, capsys):
    hf = build_hf(tmp_path / "hf", "llama", hf_tokenizer_file, d=256, ffn=512)
    write_gguf(tmp_path / "m.gguf", hf, hf_tokenizer_file, qtype="F32")
    # Rewrite one tensor as IQ4_NL (a type the gguf package knows but llmlab does not import).
    r = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    w = gguf.GGUFWriter(str(tmp_path / "iq.gguf"), "llama")
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub = f.types[-1] if len(f.types) > 1 else None
        w.add_key_value(key, f.contents(), f.types[0], sub_type=sub)
    for t in r.tensors:
        a = np.asarray(t.data)
        if t.name == "blk.0.ffn_up.weight":
            kind = gguf.GGMLQuantizationType.IQ4_NL
            w.add_tensor(t.name, np.zeros((a.shape[0], a.shape[1] // 32 * 18), np.uint8), raw_dtype=kind)
        else:
            w.add_tensor(t.name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert main(["import", "gguf", "--path", str(tmp_path / "iq.gguf"), "--out", str(tmp_path / "run")]) == 2
    err = _one_line(capsys)
    assert "blk.0.ffn_up.weight has type IQ4_NL" in err


def test_llama3_scaling_is_recovered_from_rope_freqs():
    """The divisors llama.cpp stores determine the scaling: the recovered parameters give the same divisors."""
    from llmlab.export.gguf import llama3_scaling_from_factors, rope_freq_factors
    from llmlab.model.gpt import ModelConfig

    for scaling in (LLAMA3, dict(LLAMA3, factor=8.0, original_max_position_embeddings=8192, high_freq_factor=3.0)):
        c = ModelConfig(d_model=512, n_head=4, rope_theta=500000.0, rope_scaling=scaling)
        factors = rope_freq_factors(c)
        got = llama3_scaling_from_factors(factors, c.head_dim, c.rope_theta, None)
        back = ModelConfig(d_model=512, n_head=4, rope_theta=500000.0, rope_scaling=got)
        np.testing.assert_allclose(rope_freq_factors(back), factors, rtol=1e-5)
    assert llama3_scaling_from_factors(np.ones(8, np.float32), 16, 1e4, None) is None
    with pytest.raises(ValueError):
        llama3_scaling_from_factors(np.linspace(1, 3, 8)[::-1].copy(), 16, 1e4, None)


# ------------------------------------------------------------------------------------------ llama.cpp itself


def _llama(path, n_ctx=160):
    llama_cpp = pytest.importorskip("llama_cpp")
    return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=1, n_batch=n_ctx, verbose=False,
                           type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)


def _llama_greedy(llm, ids, n):
    llm.reset()
    out = []
    for t in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
        out.append(t)
        if len(out) == n:
            break
    return out


@pytest.mark.llamacpp
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_llama_cpp_greedy_equals_ours_on_an_f32_gguf(variant, hf_tokenizer_file, tmp_path):
    from llmlab.infer import Engine, SamplingParams

    hf, ours = import_variant(variant, hf_tokenizer_file, tmp_path)
    engine = Engine(ours)
    llm = _llama(tmp_path / "m.gguf")
    params = SamplingParams(temperature=0, max_new_tokens=32, ignore_eos=True)
    for seed in range(3):
        prompt = sample_ids(hf.config.vocab_size, 12, seed=seed)
        assert engine.generate([prompt], params)[0].samples[0].token_ids == _llama_greedy(llm, prompt, 32), seed


@pytest.mark.llamacpp
def test_an_imported_hf_run_exports_to_a_gguf_llama_cpp_runs(hf_tokenizer_file, tmp_path):
    from llmlab.infer import Engine, SamplingParams
    from llmlab.runs import load_model

    arch, kw = VARIANTS["llama3-rope-odd-head"]
    build_hf(tmp_path / "hf", arch, hf_tokenizer_file, **kw)
    assert main(["import", "hf", "--path", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    assert main(["export", "gguf", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "m.gguf")]) == 0
    engine = Engine(load_model(tmp_path / "run"))
    llm = _llama(tmp_path / "m.gguf")
    prompt = sample_ids(engine.config.vocab_size, 12)
    params = SamplingParams(temperature=0, max_new_tokens=32, ignore_eos=True)
    assert engine.generate([prompt], params)[0].samples[0].token_ids == _llama_greedy(llm, prompt, 32)


@pytest.mark.llamacpp
def test_llama_cpp_quantized_k_quant_imports_as_its_dequantized_weights(hf_tokenizer_file, tmp_path):
    """llama.cpp's own quantizer (Q4_K_M, a mix of Q4_K and Q6_K) on an f32 file: the import equals
    transformers on the dequantized weights, and is what llama.cpp computes up to its activation rounding."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from llmlab.runs import load_model

    hf = build_hf(tmp_path / "hf", "llama", hf_tokenizer_file, d=256, ffn=512, num_key_value_heads=2,
                  tie_word_embeddings=False)
    write_gguf(tmp_path / "f32.gguf", hf, hf_tokenizer_file)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert llama_cpp.llama_model_quantize(str(tmp_path / "f32.gguf").encode(), str(tmp_path / "q.gguf").encode(),
                                          params) == 0
    types = {gguf.GGMLQuantizationType(t.tensor_type).name for t in gguf.GGUFReader(str(tmp_path / "q.gguf")).tensors}
    assert {"Q4_K", "Q6_K"} <= types
    assert main(["import", "gguf", "--path", str(tmp_path / "q.gguf"), "--out", str(tmp_path / "run")]) == 0
    ours = load_model(tmp_path / "run")
    ids = sample_ids(ours.config.vocab_size, 40)
    ref = hf_on_gguf_weights(hf, tmp_path / "q.gguf")
    torch.testing.assert_close(our_logits(ours, ids), hf_logits(ref, ids), atol=1e-4, rtol=1e-4)
    llm = llama_cpp.Llama(model_path=str(tmp_path / "q.gguf"), n_ctx=64, n_threads=1, verbose=False, logits_all=True,
                          type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    llm.eval(ids)
    theirs = np.asarray(llm.scores[: len(ids)])
    mine, unquantized = our_logits(ours, ids).numpy(), hf_logits(hf, ids).numpy()
    # llama.cpp also rounds the activations (to 8 bits) in its quantized products, so it is not equal to our
    # float32 computation on its weights, but far closer to it than to the model before quantization.
    assert np.abs(theirs - mine).mean() < 0.25 * np.abs(theirs - unquantized).mean()
