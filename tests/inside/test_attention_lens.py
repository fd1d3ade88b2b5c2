"""Attention maps and the logit lens: checked against the model itself and against Hugging Face's Llama."""

import json

import pytest
import torch

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.inside.attention import attention_json, attention_maps
from llmlab.inside.lens import lens_json, logit_lens
from llmlab.inside.trace import trace

PROMPT = "Before we proceed any further, hear me speak."


def ids_of(tok, text=PROMPT):
    return [tok.bos_id] + tok.encode(text)


def test_attention_rows_are_causal_distributions_that_reproduce_the_output(tiny_run):
    _, model, tok = tiny_run
    ids = ids_of(tok)
    m = attention_maps(model, ids)
    T = len(ids)
    assert m.probs.shape == (2, 4, T, T)
    assert torch.allclose(m.probs.sum(-1), torch.ones(2, 4, T), atol=1e-5)
    assert (m.probs.triu(diagonal=1) == 0).all()  # no position sees the future
    assert m.max_error < 1e-5  # weights @ v equals what the model's o_proj received (GQA: 4 query, 2 kv heads)


@pytest.mark.slow  # imports transformers
def test_attention_matches_transformers_eager_attention(tiny_run):
    from llmlab.export.hf import to_hf_model

    _, model, tok = tiny_run
    ids = ids_of(tok)
    hf = to_hf_model(model)
    hf.config._attn_implementation = "eager"  # the implementation that returns its weights
    with torch.no_grad():
        ref = hf(torch.tensor([ids]), output_attentions=True).attentions  # n_layer x (1, H, T, T)
    ours = attention_maps(model, ids).probs
    for layer, r in enumerate(ref):
        assert torch.allclose(ours[layer], r[0].float(), atol=1e-5), layer


def test_attention_of_another_kind_is_refused(tiny_run):
    """A model whose attention output is not softmax(qk^T/sqrt(d)) v (here: rescaled before o_proj) is refused,
    not drawn wrongly."""
    _, model, tok = tiny_run
    h = model.layers[1].self_attn.o_proj.register_forward_pre_hook(lambda mod, args: (args[0] * 1.1,))
    try:
        with pytest.raises(LlmlabError, match="recomputed attention differs"):
            attention_maps(model, ids_of(tok))
    finally:
        h.remove()


def test_lens_at_the_last_layer_is_the_models_output(tiny_run):
    _, model, tok = tiny_run
    ids = ids_of(tok)
    lens = logit_lens(model, ids)
    assert lens.logprobs.shape == (3, len(ids), tok.vocab_size)  # embeddings + 2 layers
    with torch.no_grad():
        own = torch.log_softmax(model(torch.tensor([ids])).float(), -1)[0]
    assert torch.allclose(lens.logprobs[-1], own, atol=1e-5)
    assert lens.max_error < 1e-5


@pytest.mark.slow  # imports transformers
def test_residual_stream_matches_transformers_hidden_states(tiny_run):
    from llmlab.export.hf import to_hf_model

    _, model, tok = tiny_run
    ids = ids_of(tok)
    with torch.no_grad():
        hs = to_hf_model(model)(torch.tensor([ids]), output_hidden_states=True).hidden_states
    t = trace(model, ids, attention=False)
    # HF lists the input of every layer (the embeddings first), then the final *normed* state.
    for i in range(len(t.residuals) - 1):
        assert torch.allclose(t.residuals[i], hs[i].float(), atol=1e-5), i
    assert torch.allclose(model.norm(t.residuals[-1]), hs[-1].float(), atol=1e-5)


def test_lens_json_is_consistent(tiny_run):
    _, model, tok = tiny_run
    data = lens_json(model, tok, PROMPT, top=3)
    T = len(data["tokens"])
    assert data["layers"] == ["embed", "1", "2"] and data["token_ids"][0] == tok.bos_id
    assert all(len(row) == T and all(len(cell) == 3 for cell in row) for row in data["top"])
    for l, row in enumerate(data["next"]):
        assert row[-1] is None
        for t, cell in enumerate(row[:-1]):
            assert cell["id"] == data["token_ids"][t + 1]
            top = data["top"][l][t]
            assert (cell["rank"] == 1) == (top[0]["id"] == cell["id"])
            assert top[0]["prob"] >= cell["prob"] - 1e-4
            assert all(a["prob"] >= b["prob"] for a, b in zip(top, top[1:]))
    json.dumps(data)  # JSON-ready


def test_attention_json_selects_layers_and_heads(tiny_run):
    _, model, tok = tiny_run
    data = attention_json(model, tok, PROMPT, layers=[1], heads=[0, 3])
    T = len(data["tokens"])
    assert data["layers"] == [1] and data["heads"] == [0, 3]
    assert len(data["attention"]) == 1 and len(data["attention"][0]) == 2 and len(data["attention"][0][0]) == T
    full = attention_maps(model, data["token_ids"]).probs
    assert torch.allclose(torch.tensor(data["attention"][0][1]), full[1, 3], atol=1e-4)
    with pytest.raises(LlmlabError, match=r"heads \[4\] out of range"):
        attention_json(model, tok, PROMPT, heads=[4])


@pytest.mark.slow
def test_cli_on_a_trained_and_an_imported_run(tiny_run, imported_run, tmp_path, capsys):
    run, _, _ = tiny_run
    for folder, layers in ((run, 2), (imported_run, 3)):
        png = tmp_path / f"attn_{layers}.png"
        assert main(["inside", "attention", "--model", str(folder), "--prompt", PROMPT, "--out", str(png)]) == 0
        assert f"{layers} layers x 4 heads" in capsys.readouterr().out
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert main(["inside", "lens", "--model", str(folder), "--prompt", PROMPT, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert len(data["layers"]) == layers + 1 and data["max_error"] < 1e-4
        png = tmp_path / f"lens_{layers}.png"
        assert main(["inside", "lens", "--model", str(folder), "--prompt", PROMPT, "--out", str(png)]) == 0
        assert png.read_bytes()[:4] == b"\x89PNG" and "token" in capsys.readouterr().out
    assert main(["inside", "attention", "--model", str(imported_run), "--prompt", PROMPT, "--json",
                 "--layers", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["max_error"] < 1e-4  # one key/value head shared by four query heads
    assert main(["inside", "lens", "--model", str(tmp_path / "none"), "--prompt", "x"]) == 2
    assert "run folder not found" in capsys.readouterr().err
