"""Hugging Face parity: a random tiny run exported with ``llmlab export hf`` and loaded by ``transformers``
gives our logits (1e-4, fp32) and our greedy tokens; the HF tokenizer gives our ids; the chat template renders
what ours renders; import(export(run)) is exact; bad inputs are one-line errors.

    .venv/bin/pytest tests/export/test_hf.py -q
"""

from __future__ import annotations

import json

import pytest

from llmlab.cli import main

from .conftest import PROMPTS, greedy_ours

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module", params=["tied", "untied"])
def exported(request, tmp_path_factory):
    run, model, tok = request.getfixturevalue("tiny_run" if request.param == "tied" else "tiny_run_untied")
    out = tmp_path_factory.mktemp(f"hf_{request.param}")
    assert main(["export", "hf", "--model", str(run), "--out", str(out)]) == 0
    return run, model, tok, out


def _inputs(tok):
    return [[tok.bos_id] + tok.encode(p) for p in PROMPTS]


def test_files_and_config(exported):
    _, model, tok, out = exported
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert cfg["tie_word_embeddings"] == model.config.tie_embeddings
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [tok.end_id, tok.eot_id]
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "model.embed_tokens.weight" in keys and "model.layers.1.mlp.down_proj.weight" in keys
    assert ("lm_head.weight" in keys) == (not model.config.tie_embeddings)


def test_logits_and_greedy_match_transformers(exported):
    from transformers import AutoModelForCausalLM

    _, model, tok, out = exported
    hf = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    assert hf.config.rope_parameters["rope_theta"] == model.config.rope_theta
    with torch.no_grad():
        for ids in _inputs(tok):
            x = torch.tensor([ids])
            diff = (model(x) - hf(x).logits).abs().max().item()
            assert diff < 1e-4, diff
        ids = _inputs(tok)[0]
        ours = greedy_ours(model, ids, 64, stop={tok.end_id, tok.eot_id})
        theirs = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, max_new_tokens=64)[0, len(ids):].tolist()
    assert len(ours) == 64  # the random model does not stop early here, so the test compares 64 tokens
    assert theirs == ours


def test_to_hf_model_in_memory(tiny_run):
    from llmlab.export.hf import to_hf_model

    _, model, tok, = tiny_run
    hf = to_hf_model(model)
    x = torch.tensor(_inputs(tok)[3:4])
    with torch.no_grad():
        assert (model(x) - hf(x).logits).abs().max().item() < 1e-4


def test_hf_tokenizer_gives_our_ids(exported):
    from transformers import AutoTokenizer

    _, _, tok, out = exported
    hft = AutoTokenizer.from_pretrained(str(out))
    for text in PROMPTS + ["<|user|>hi<|end|>", "  spaces\r\n\r\n  x", ""]:
        assert hft.encode(text, add_special_tokens=False) == tok.encode(text, allowed_special="all"), text
        assert hft.decode(tok.encode(text)) == text
    assert hft.bos_token_id == tok.bos_id and hft.eos_token_id == tok.end_id and hft.pad_token_id == tok.pad_id


def test_chat_template_matches_ours(exported):
    """HF's apply_chat_template (Jinja) renders our text and, tokenized, our ids -- tool turns included."""
    from transformers import AutoTokenizer

    from llmlab.chat.template import render, render_prompt, render_text

    _, _, tok, out = exported
    hft = AutoTokenizer.from_pretrained(str(out))
    conversations = [
        [{"role": "user", "content": "Hello!"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
         {"role": "assistant", "content": "4"}, {"role": "user", "content": "中文 and émoji 🎉\n\nok"}],
    ]
    for messages in conversations:
        for gen in (True, False):
            text = hft.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            assert text == render_text(messages, add_generation_prompt=gen)
            ids = hft.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
            want = render_prompt(messages, tok) if gen else render(messages, tok)[0]
            assert list(ids) == want


def test_import_of_export_is_exact(exported, tmp_path):
    from llmlab.runs import load_run, model_state_dict

    run, model, tok, out = exported
    assert main(["import", "hf", "--path", str(out), "--out", str(tmp_path / "back")]) == 0
    back, back_tok = load_run(tmp_path / "back")
    a, b = model_state_dict(model), model_state_dict(back)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert back.config.rope_theta == model.config.rope_theta and back.config.norm_eps == model.config.norm_eps
    assert back_tok.merges == tok.merges and back_tok.special_tokens == tok.special_tokens
    assert back_tok.pattern == tok.pattern


def test_import_renumbers_a_reordered_vocabulary(exported, tmp_path):
    """A tokenizer.json whose ids are in another order (as GPT-2's are): the rows are permuted back."""
    from safetensors.torch import load_file, save_file

    from llmlab.export.hf import import_hf
    from llmlab.runs import load_run

    _, model, tok, out = exported
    src = tmp_path / "shuffled"
    src.mkdir()
    data = json.loads((out / "tokenizer.json").read_text())
    n = tok.vocab_size
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))  # new_id = perm[old_id]
    vocab = data["model"]["vocab"]
    data["model"]["vocab"] = {s: int(perm[i]) for s, i in vocab.items()}
    for t in data["added_tokens"]:
        t["id"] = int(perm[t["id"]])
    (src / "tokenizer.json").write_text(json.dumps(data))
    (src / "config.json").write_text((out / "config.json").read_text())
    sd = load_file(str(out / "model.safetensors"))
    inv = torch.argsort(perm)  # row new_id holds old row inv[new_id]
    for k in ("model.embed_tokens.weight", "lm_head.weight"):
        if k in sd:
            sd[k] = sd[k][inv].contiguous()
    save_file(sd, str(src / "model.safetensors"))
    import_hf(src, tmp_path / "back")
    back, back_tok = load_run(tmp_path / "back")
    assert back_tok.merges == tok.merges and back_tok.special_tokens == tok.special_tokens
    assert torch.equal(back.embed_tokens.weight, model.embed_tokens.weight)
    assert torch.equal(back.lm_head.weight, model.lm_head.weight)


def test_sharded_checkpoint_imports(exported, tmp_path):
    from safetensors.torch import load_file, save_file

    from llmlab.runs import load_model

    _, model, _, out = exported
    src = tmp_path / "sharded"
    src.mkdir()
    sd = load_file(str(out / "model.safetensors"))
    names = sorted(sd)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for fname, keys in shards.items():
        save_file({k: sd[k].to(torch.bfloat16) for k in keys}, str(src / fname))
    index = {"metadata": {}, "weight_map": {k: f for f, ks in shards.items() for k in ks}}
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    for name in ("config.json", "tokenizer.json"):
        (src / name).write_text((out / name).read_text())
    assert main(["import", "hf", "--path", str(src), "--out", str(tmp_path / "back")]) == 0
    back = load_model(tmp_path / "back")
    want = model.embed_tokens.weight.to(torch.bfloat16).float()
    assert torch.equal(back.embed_tokens.weight, want)  # bf16 shards are widened exactly to fp32


# ------------------------------------------------------------------------------------------ bad inputs


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("llmlab: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_export_run_without_weights_is_an_error(tiny_run, tmp_path, capsys):
    run, _, _ = tiny_run
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "model_config.json").write_text((run / "model_config.json").read_text())
    assert main(["export", "hf", "--model", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "weights not found" in _one_line_error(capsys)


def test_import_non_llama_config_is_an_error(tmp_path, capsys):
    src = tmp_path / "gpt2"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                                 "vocab_size": 50257, "n_embd": 768}))
    assert main(["import", "hf", "--path", str(src), "--out", str(tmp_path / "r")]) == 2
    assert "not a Llama causal LM" in _one_line_error(capsys)


def test_import_unsupported_features_are_errors(exported, tmp_path, capsys):
    _, _, _, out = exported
    src = tmp_path / "biased"
    src.mkdir()
    cfg = json.loads((out / "config.json").read_text())
    cfg.update(attention_bias=True, rope_scaling={"rope_type": "llama3", "factor": 8.0})
    (src / "config.json").write_text(json.dumps(cfg))
    assert main(["import", "hf", "--path", str(src), "--out", str(tmp_path / "r")]) == 2
    err = _one_line_error(capsys)
    assert "biases" in err and "RoPE scaling" in err


def test_import_sentencepiece_tokenizer_explains(exported, tmp_path, capsys):
    _, _, _, out = exported
    src = tmp_path / "sp"
    src.mkdir()
    for name in ("config.json", "model.safetensors"):
        (src / name).write_bytes((out / name).read_bytes())
    data = json.loads((out / "tokenizer.json").read_text())
    data["model"]["byte_fallback"] = True
    (src / "tokenizer.json").write_text(json.dumps(data))
    assert main(["import", "hf", "--path", str(src), "--out", str(tmp_path / "r")]) == 2
    assert "byte fallback" in _one_line_error(capsys)


def test_import_of_a_transformers_saved_model(tiny_run, tmp_path):
    """A folder written by transformers' own save_pretrained (its current config layout, e.g. rope_parameters)
    imports to exactly our weights."""
    from llmlab.export.hf import import_hf, to_hf_model
    from llmlab.runs import load_run, model_state_dict

    run, model, tok = tiny_run
    src = tmp_path / "saved"
    to_hf_model(model).save_pretrained(str(src))
    tok.export_hf(src / "tokenizer.json")
    import_hf(src, tmp_path / "back")
    back, _ = load_run(tmp_path / "back")
    assert back.config.rope_theta == model.config.rope_theta and back.config.n_kv_head == model.config.n_kv_head
    a, b = model_state_dict(model), model_state_dict(back)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_import_with_an_llmlab_tokenizer_instead(exported, tmp_path, capsys):
    """A folder with no tokenizer.json: refused with a hint, then imported with --tokenizer."""
    from llmlab.runs import load_run

    run, model, tok, out = exported
    src = tmp_path / "weights_only"
    src.mkdir()
    for name in ("config.json", "model.safetensors"):
        (src / name).write_bytes((out / name).read_bytes())
    assert main(["import", "hf", "--path", str(src), "--out", str(tmp_path / "a")]) == 2
    assert "--tokenizer" in _one_line_error(capsys)
    assert main(["import", "hf", "--path", str(src), "--out", str(tmp_path / "b"),
                 "--tokenizer", str(run / "tokenizer")]) == 0
    back, back_tok = load_run(tmp_path / "b")
    assert back_tok.merges == tok.merges and torch.equal(back.embed_tokens.weight, model.embed_tokens.weight)


def test_import_converts_a_gpt2_style_byte_level_tokenizer(exported, tmp_path):
    """ByteLevel(use_regex=True) -- GPT-2's own split inside the byte-level step -- converts to a tokenizer
    with GPT-2's pattern that encodes exactly as the HF tokenizers library does."""
    import tokenizers

    from llmlab.export.hf import HF_GPT2_PATTERN, import_hf
    from llmlab.runs import load_run

    _, _, _, out = exported
    src = tmp_path / "gpt2style"
    src.mkdir()
    data = json.loads((out / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    (src / "tokenizer.json").write_text(json.dumps(data))
    for name in ("config.json", "model.safetensors"):
        (src / name).write_bytes((out / name).read_bytes())
    import_hf(src, tmp_path / "back")
    _, back_tok = load_run(tmp_path / "back")
    assert back_tok.pattern == HF_GPT2_PATTERN
    hf = tokenizers.Tokenizer.from_file(str(src / "tokenizer.json"))
    for text in PROMPTS + ["  spaces\r\n\r\n  x", "I'LL WE'VE they'd 12345"]:
        assert back_tok.encode(text) == hf.encode(text, add_special_tokens=False).ids, text


def test_same_prompt_text_same_greedy_ids(exported):
    """transformers' tokenizer puts <|bos|> in front as `llmlab generate` does, so the same prompt *text* gives
    the same ids and the same greedy continuation in both (the engine, not a reference loop)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmlab.infer.sampling import SamplingParams
    from llmlab.infer.text import encode_prompt, generate_text

    _, model, tok, out = exported
    hft = AutoTokenizer.from_pretrained(str(out))
    hf = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    prompt = PROMPTS[0]
    enc = hft(prompt, return_tensors="pt")
    assert enc["input_ids"][0].tolist() == encode_prompt(tok, prompt) and enc["input_ids"][0, 0] == tok.bos_id
    ours = generate_text(model, tok, prompt, SamplingParams(temperature=0.0, max_new_tokens=32, ignore_eos=True))
    with torch.no_grad():
        theirs = hf.generate(**enc, do_sample=False, max_new_tokens=32, eos_token_id=None)[0, enc["input_ids"].shape[1]:]
    assert ours.completions[0].token_ids == theirs.tolist()
    # A chat still gets one <|bos|>: the template writes it and apply_chat_template adds no special tokens.
    ids = hft.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=True, add_generation_prompt=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert ids.count(tok.bos_id) == 1
