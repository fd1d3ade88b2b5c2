"""The model: shapes, causality, KV cache == full forward, GQA, presets, accounting.

    .venv/bin/pytest tests/model -q
"""

import math

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.model.gpt import GPT, KVCache, ModelConfig, document_causal_mask


def tiny(**kw):
    torch.manual_seed(0)
    return GPT(ModelConfig.preset("tiny", vocab_size=97, **kw)).eval()


def test_shapes_and_param_count():
    m = tiny()
    idx = torch.randint(0, 97, (3, 17))
    assert m(idx).shape == (3, 17, 97)
    c = m.config
    per_layer = 2 * c.d_model + c.d_model * c.d_model * 2 + 2 * c.d_model * c.n_kv_head * c.head_dim + 3 * c.d_model * c.ffn_hidden
    assert m.num_params() == 97 * c.d_model + c.n_layer * per_layer + c.d_model  # tied head counted once
    assert m.flops_per_token(16) == 6 * m.num_params() + 12 * c.n_layer * c.d_model * 16


def test_causality_future_tokens_do_not_change_past_logits():
    m = tiny()
    idx = torch.randint(0, 97, (2, 20))
    changed = idx.clone()
    changed[:, 12:] = torch.randint(0, 97, (2, 8))
    a, b = m(idx), m(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_kv_cache_forward_equals_full_forward():
    m = tiny()
    idx = torch.randint(0, 97, (2, 24))
    full = m(idx)
    cache = KVCache(m.config, 2, 24, "cpu")
    parts = [m(idx[:, :10], kv_cache=cache), m(idx[:, 10:17], kv_cache=cache)]
    parts += [m(idx[:, t : t + 1], kv_cache=cache) for t in range(17, 24)]  # one token at a time
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 24


def test_gqa_matches_explicitly_repeated_kv_heads():
    """n_kv_head=2 < n_head=4 equals a full multi-head model whose k/v weights repeat each kv head."""
    gqa = tiny()
    assert gqa.config.n_kv_head == 2 and gqa.config.n_head == 4
    mha = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=4)).eval()
    sd = gqa.state_dict()
    hd, rep = gqa.config.head_dim, 2
    for k in list(sd):
        if k.endswith(("k_proj.weight", "v_proj.weight")):
            w = sd[k].view(2, hd, -1)  # (kv_heads, hd, d_model)
            sd[k] = w.repeat_interleave(rep, dim=0).reshape(4 * hd, -1)
    mha.load_state_dict(sd)
    idx = torch.randint(0, 97, (2, 15))
    torch.testing.assert_close(gqa(idx), mha(idx), atol=1e-5, rtol=1e-5)


def test_document_mask_isolates_packed_documents():
    m = tiny()
    a, b = torch.randint(0, 97, (1, 7)), torch.randint(0, 97, (1, 9))
    packed = torch.cat([a, b], dim=1)
    doc_ids = torch.tensor([[0] * 7 + [1] * 9])
    positions = torch.cat([torch.arange(7), torch.arange(9)]).unsqueeze(0)
    out = m(packed, positions=positions, attn_mask=document_causal_mask(doc_ids))
    torch.testing.assert_close(out[:, 7:], m(b), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, :7], m(a), atol=1e-5, rtol=1e-5)


def test_presets_and_errors():
    assert ModelConfig.preset("depth-6").d_model == 384
    for name in ModelConfig.PRESETS:
        ModelConfig.preset(name)
    with pytest.raises(LlmlabError, match="unknown model preset 'huge'"):
        ModelConfig.preset("huge")
    with pytest.raises(LlmlabError, match="n_kv_head"):
        ModelConfig(d_model=64, n_head=4, n_kv_head=3)


def test_initial_loss_is_near_uniform():
    m = tiny()
    idx, targets = torch.randint(0, 97, (4, 32)), torch.randint(0, 97, (4, 32))
    loss = torch.nn.functional.cross_entropy(m(idx).flatten(0, 1), targets.flatten())
    assert abs(loss.item() - math.log(97)) < 0.1


@pytest.fixture
def no_tf32():
    # TF32 off: the GPU then does float32 arithmetic, so only summation order differs from the CPU.
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.gpu
def test_cuda_float32_forward_and_gradients_match_the_cpu_in_float64(no_tf32):
    cpu = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=2)).double()
    gpu = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=2)).cuda()
    gpu.load_state_dict(cpu.float().state_dict())
    cpu.double()
    idx = torch.randint(0, 97, (3, 40))
    tgt = torch.roll(idx, -1, 1)
    ref = cpu(idx, targets=tgt)
    ref.backward()
    out = gpu(idx.cuda(), targets=tgt.cuda())
    out.backward()
    assert abs(out.item() - ref.item()) < 1e-5 * abs(ref.item())
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        err = (q.grad.double().cpu() - p.grad).norm() / p.grad.norm()
        assert err < 1e-4, (name, err.item())
    # Logits and the KV-cache path too (the engine's decode uses it).
    torch.testing.assert_close(gpu(idx.cuda()).double().cpu(), cpu(idx), rtol=1e-4, atol=1e-4)


LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}


def test_head_size_and_rope_scaling_of_imported_models(tmp_path):
    from llmlab.runs import load_model, load_model_config, save_run_model

    plain = ModelConfig(d_model=64, n_head=4)
    assert plain.head_dim == 16 and plain.format_version == 1
    c = ModelConfig(d_model=64, n_head=4, n_kv_head=2, head_dim=24, rope_scaling=LLAMA3, max_seq_len=32)
    assert c.format_version == 2  # a version-1 reader would build another model: it must refuse the file
    m = GPT(c)
    attn = m.layers[0].self_attn
    assert attn.q_proj.weight.shape == (96, 64) and attn.k_proj.weight.shape == (48, 64)
    assert attn.o_proj.weight.shape == (64, 96) and m.rope_cos.shape == (32, 24)
    assert m(torch.randint(0, 4096, (2, 9))).shape == (2, 9, 4096)
    save_run_model(tmp_path / "new", m)
    assert load_model(tmp_path / "new").config == c
    # A run folder written before head_dim and rope_scaling existed (version 1, neither key) still loads.
    save_run_model(tmp_path / "old", GPT(plain))
    import json

    data = json.loads((tmp_path / "old" / "model_config.json").read_text())
    assert data["version"] == 1
    del data["head_dim"], data["rope_scaling"]
    (tmp_path / "old" / "model_config.json").write_text(json.dumps(data))
    assert load_model_config(tmp_path / "old") == plain
    with pytest.raises(LlmlabError, match="rope_scaling"):
        ModelConfig(rope_scaling={"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(LlmlabError, match="head_dim=7 must be even"):
        ModelConfig(head_dim=7)


def test_llama3_rope_frequencies_equal_transformers():
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from llmlab.model.gpt import rope_frequencies

    cfg = transformers.LlamaConfig(hidden_size=256, num_attention_heads=4, head_dim=64, max_position_embeddings=512,
                                   rope_parameters={"rope_theta": 500000.0, **LLAMA3})
    want = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")[0].double()
    got = rope_frequencies(64, 500000.0, LLAMA3)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    assert not torch.allclose(got, rope_frequencies(64, 500000.0))  # the scaling changes some frequencies
