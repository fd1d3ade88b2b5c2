"""An open model end to end, as a user meets one: a Llama-architecture folder with a ChatML-style byte-level BPE
tokenizer that is not llmlab's (random weights through transformers, tokenizer trained here) imports with
``llmlab import hf``; the run's tokenizer is the model's own (``ImportedTokenizer``), its chat template renders
the ids transformers' ``apply_chat_template`` does, our logits on them equal transformers', and ``llmlab chat``
and ``llmlab generate`` answer from it. The same model as a GGUF file imports with the same tokenizer ids.

    .venv/bin/pytest tests/export/test_open_model.py -q
"""

from __future__ import annotations

import json

import pytest
import torch

from _tokenizer_builders import CHATML, byte_level_folder
from llmlab.cli import main

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 12 plus 7? 中文 🎉"}]


@pytest.fixture(scope="module")
def open_model(tmp_path_factory):
    """``(folder, hf_model, hf_tokenizer)``: an instruct-style folder as published models ship them."""
    root = tmp_path_factory.mktemp("open")
    folder = byte_level_folder(root / "model", template=CHATML)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=0, eos_token_id=2)
    hf = transformers.LlamaForCausalLM(cfg).eval()
    hf.save_pretrained(str(folder))
    return folder, hf, hf_tok


def test_import_hf_chat_prompt_and_logits_equal_transformers(open_model, tmp_path, capsys):
    from llmlab.chat.template import render_prompt
    from llmlab.runs import load_run
    from llmlab.tokenizer.imported import ImportedTokenizer

    folder, hf, hf_tok = open_model
    assert main(["import", "hf", "--path", str(folder), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    model, tok = load_run(tmp_path / "run")
    assert isinstance(tok, ImportedTokenizer)
    want = hf_tok.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True)
    want = list(want["input_ids"] if hasattr(want, "keys") else want)
    ids = render_prompt(MESSAGES, tok)
    assert ids == want
    x = torch.tensor([ids])
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf(x).logits, atol=1e-4, rtol=1e-4)


def test_chat_and_generate_commands_answer_from_an_imported_model(open_model, tmp_path, capsys):
    folder, _, _ = open_model
    run = tmp_path / "run"
    assert main(["import", "hf", "--path", str(folder), "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["chat", "--model", str(run), "--prompt", "Hello!", "--json", "--temperature", "0",
                 "--max-new-tokens", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finish_reason"] in ("stop", "length") and out["prompt_tokens"] > 5 and isinstance(out["text"], str)
    assert main(["generate", "--model", str(run), "--prompt", "Hello", "--temperature", "0",
                 "--max-new-tokens", "5"]) == 0


def test_gguf_import_encodes_with_the_models_own_ids(open_model, tmp_path, capsys):
    """The GGUF route: the file's tokenizer metadata becomes the run's tokenizer, with the HF file's ids."""
    pytest.importorskip("gguf")
    from _tokenizer_builders import write_gguf

    from llmlab.runs import load_tokenizer

    folder, _, hf_tok = open_model
    path = write_gguf(tmp_path / "tok.gguf", folder, "gpt2", pre="llama-bpe", template=CHATML)
    # A GGUF with only the tokenizer imports no weights; the tokenizer seam is what writes RUN/tokenizer.
    from gguf import GGUFReader

    from llmlab.export.imported_tokenizer import GGUFTokenizerFields, imported_source, write_tokenizer

    tok_dir = tmp_path / "run" / "tokenizer"
    write_tokenizer(tok_dir, GGUFTokenizerFields(GGUFReader(str(path)).fields, path), len(hf_tok))
    assert imported_source(tok_dir) == "gguf"
    tok = load_tokenizer(tmp_path / "run")
    text = "Hello world, 1234 tokens: café 中文 🎉"
    assert tok.encode(text) == hf_tok.encode(text, add_special_tokens=False)
    assert tok.chat_template == CHATML
