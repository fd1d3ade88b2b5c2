"""Imported tokenizers (``llmlab.tokenizer.imported``): ids exactly equal to Hugging Face ``tokenizers`` (HF
folders) and to llama.cpp (GGUF files) on English, code, Chinese and emoji text, on both the tiktoken fast path
and our own merge loop; decode round trips; save/load; the add-BOS rule; bad files are one-line errors.

    .venv/bin/pytest tests/tokenizer/test_imported.py -q        # -m "not llamacpp" skips llama.cpp
"""

from __future__ import annotations

import json

import pytest

from _tokenizer_builders import CHATML, TEXTS, byte_level_folder, sp_folder, write_gguf
from llmlab.errors import LlmlabError

tokenizers = pytest.importorskip("tokenizers")

ROUND_TRIP = ["Hello world! The quick brown fox.", "def f(x):\n    return x * 2\n", "中文分词测试，你好世界。",
              "emoji 🎉👍🏽 and Привет"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {"byte": byte_level_folder(root / "byte"), "smollm": byte_level_folder(root / "smollm", digits=True),
            "sp": sp_folder(root / "sp"), "sp_legacy": sp_folder(root / "sp_legacy", legacy=True)}


@pytest.fixture(scope="module")
def imported(folders):
    from llmlab.tokenizer.imported import ImportedTokenizer

    return {k: ImportedTokenizer.from_hf(v) for k, v in folders.items()}


@pytest.mark.parametrize("kind", ["byte", "smollm", "sp", "sp_legacy"])
def test_ids_equal_hf_tokenizers(folders, imported, kind):
    hf = tokenizers.Tokenizer.from_file(str(folders[kind] / "tokenizer.json"))
    tok = imported[kind]
    for text in TEXTS:
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, allowed_special="all") == want, text
        assert tok.encode_reference(text, allowed_special="all") == want, text
    assert tok.encode_batch(TEXTS, allowed_special="all") == [hf.encode(t, add_special_tokens=False).ids
                                                              for t in TEXTS]


def test_fast_path_is_taken_where_the_scheme_allows(imported):
    """One split regex (byte-level) and SentencePiece pieces go through tiktoken; SmolLM's two-step split does not."""
    assert imported["byte"].uses_fast_path and imported["sp"].uses_fast_path and imported["sp_legacy"].uses_fast_path
    assert not imported["smollm"].uses_fast_path
    assert "not one regex split" in imported["smollm"].spec["fast_path"]["reason"]


def test_vocabulary_without_some_bytes(folders, imported):
    """Trained without emoji: their lead bytes are not tokens, and HF drops them before merging."""
    from llmlab.tokenizer.hf import byte_to_unicode

    tok = imported["byte"]
    vocab = json.loads((folders["byte"] / "tokenizer.json").read_text())["model"]["vocab"]
    assert byte_to_unicode()[0xF0] not in vocab
    assert tok._missing_bytes and 0xF0 in tok._missing_bytes
    hf = tokenizers.Tokenizer.from_file(str(folders["byte"] / "tokenizer.json"))
    assert tok.encode("a🎉b") == hf.encode("a🎉b", add_special_tokens=False).ids


def test_byte_fallback_and_prefix_space(imported):
    tok = imported["sp"]
    ids = tok.encode("中🎉")
    byte_ids = set(tok._byte_ids.values())
    assert all(i in byte_ids for i in ids[1:]) and tok.decode(ids) == "中🎉"
    assert tok.tokens[tok.encode("Hello")[0]].startswith("▁")  # the add-prefix-space rule


@pytest.mark.parametrize("kind", ["byte", "sp", "sp_legacy"])
def test_decode_round_trip_and_matches_hf(folders, imported, kind):
    hf = tokenizers.Tokenizer.from_file(str(folders[kind] / "tokenizer.json"))
    tok = imported[kind]
    for text in ROUND_TRIP:
        ids = tok.encode(text)
        if kind == "byte" and any(ord(c) >= 0x1F000 for c in text):
            continue  # bytes this vocabulary lacks are dropped, by the model's own rule
        assert tok.decode(ids) == text
        assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=False)
        assert tok.decode_bytes(ids) == b"".join(tok.token_bytes(i) for i in ids)


def test_special_tokens_only_when_allowed(imported):
    tok = imported["byte"]
    text = "<|im_start|>user\nhi<|im_end|>"
    ids = tok.encode(text)
    assert tok.special_id("<|im_start|>") not in ids and tok.decode(ids) == text
    allowed = tok.encode(text, allowed_special="all")
    assert allowed[0] == tok.special_id("<|im_start|>") and tok.is_special(allowed[0])
    assert tok.encode(text, allowed_special={"<|im_end|>"})[-1] == tok.special_id("<|im_end|>")
    with pytest.raises(LlmlabError):
        tok.encode(text, allowed_special={"<|nope|>"})


def test_add_bos_rule_eos_and_stop_ids(folders, imported):
    from transformers import AutoTokenizer

    for kind in ("byte", "sp"):
        tok = imported[kind]
        hft = AutoTokenizer.from_pretrained(str(folders[kind]))
        with_specials = hft("Hello world")["input_ids"]
        assert (with_specials[0] == tok.bos_id) == tok.add_bos
        assert with_specials[int(tok.add_bos):] == tok.encode("Hello world")
        assert tok.eos_id == hft.eos_token_id
    byte = imported["byte"]
    assert byte.eos_ids == (2, 3)  # tokenizer_config's eos, then generation_config.json's list
    assert byte.stop_ids == (2, 3) and byte.pad_id == 3
    assert imported["sp"].pad_id == imported["sp"].eos_id  # no pad token: padding uses eos
    assert byte.chat_template == CHATML


def test_save_load_and_load_tokenizer_dir(imported, tmp_path):
    from llmlab.tokenizer import Tokenizer, load_tokenizer_dir
    from llmlab.tokenizer.imported import FORMAT, ImportedTokenizer

    for kind, tok in imported.items():
        tok.save(tmp_path / kind)
        data = json.loads((tmp_path / kind / "tokenizer.json").read_text())
        assert data["format"] == FORMAT and data["version"] == 1
        back = load_tokenizer_dir(tmp_path / kind)
        assert isinstance(back, ImportedTokenizer)
        assert [back.encode(t, "all") for t in TEXTS] == [tok.encode(t, "all") for t in TEXTS]
        assert back.uses_fast_path == tok.uses_fast_path and back.chat_template == tok.chat_template
    Tokenizer([]).save(tmp_path / "native")
    assert isinstance(load_tokenizer_dir(tmp_path / "native"), Tokenizer)


def test_native_tokenizer_answers_the_same_questions():
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer([])
    assert tok.add_bos and not tok.add_eos and tok.chat_template is None
    assert tok.eos_ids == (tok.end_id, tok.eot_id) and tok.stop_ids == (tok.end_id, tok.eot_id, tok.bos_id)


def test_bad_files_are_one_line_errors(folders, tmp_path):
    from llmlab.tokenizer import load_tokenizer_dir
    from llmlab.tokenizer.imported import ImportedTokenizer

    with pytest.raises(LlmlabError, match="tokenizer.json: not found"):
        ImportedTokenizer.from_hf(tmp_path)
    data = json.loads((folders["byte"] / "tokenizer.json").read_text())
    cases = {
        "wordpiece": ({**data, "model": {"type": "WordPiece", "vocab": {"a": 0}}}, "WordPiece"),
        "unigram": ({**data, "model": {"type": "Unigram", "vocab": [["a", 0.0]]}}, "Unigram"),
        "pretok": ({**data, "pre_tokenizer": {"type": "BertPreTokenizer"}}, "BertPreTokenizer"),
        "merge": ({**data, "model": {**data["model"], "merges": [["zz", "qq"]]}}, "merge 0"),
    }
    for name, (bad, words) in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "tokenizer.json").write_text(json.dumps(bad))
        with pytest.raises(LlmlabError, match=words) as e:
            ImportedTokenizer.from_hf(tmp_path / name)
        assert "\n" not in str(e.value)
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "tokenizer.json").write_text("{not json")
    with pytest.raises(LlmlabError, match="cannot read"):
        ImportedTokenizer.from_hf(tmp_path / "garbled")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "tokenizer.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(LlmlabError, match="not an llmlab tokenizer"):
        load_tokenizer_dir(tmp_path / "other")


# ----------------------------------------------------------------------------------------------------------
# GGUF: the same vocabularies, read with llama.cpp's rules


@pytest.fixture(scope="module")
def gguf_files(folders, tmp_path_factory):
    pytest.importorskip("gguf")
    root = tmp_path_factory.mktemp("gguf")
    out = {pre: write_gguf(root / f"{pre}.gguf", folders["byte"], "gpt2", pre=pre, template=CHATML)
           for pre in ("llama-bpe", "gpt-2", "qwen2", "smollm")}
    out["spm"] = write_gguf(root / "spm.gguf", folders["sp"], "llama")
    return out


def test_gguf_metadata(gguf_files):
    from llmlab.tokenizer.imported import ImportedTokenizer

    tok = ImportedTokenizer.from_gguf(gguf_files["llama-bpe"])
    assert tok.model == "byte_bpe" and tok.semantics == "llama.cpp" and tok.ignore_merges and tok.add_bos
    assert tok.bos_id == 0 and tok.eos_ids == (2,) and tok.pad_id == 3 and tok.chat_template == CHATML
    assert set(tok.stop_ids) == {2, 3}  # eos, and <|endoftext|> which llama.cpp ends a turn at by name
    assert not ImportedTokenizer.from_gguf(gguf_files["qwen2"]).add_bos
    spm = ImportedTokenizer.from_gguf(gguf_files["spm"])
    assert spm.model == "sp_bpe" and spm.add_bos and spm.bos_id == 1 and spm.unk_id == 0 and spm.uses_fast_path


@pytest.mark.llamacpp
@pytest.mark.parametrize("name", ["llama-bpe", "gpt-2", "qwen2", "smollm", "spm"])
def test_gguf_ids_equal_llama_cpp(gguf_files, name):
    llama_cpp = pytest.importorskip("llama_cpp")
    from llmlab.tokenizer.imported import ImportedTokenizer

    tok = ImportedTokenizer.from_gguf(gguf_files[name])
    llm = llama_cpp.Llama(model_path=str(gguf_files[name]), vocab_only=True, verbose=False)
    for text in TEXTS:
        want = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        assert tok.encode(text, allowed_special="all") == want, text
        assert tok.encode_reference(text, allowed_special="all") == want, text
        plain = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        assert plain == ([tok.bos_id] if tok.add_bos else []) + tok.encode(text), text
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    eog = {i for i in range(tok.vocab_size) if llama_cpp.llama_vocab_is_eog(vocab, i)}
    assert eog == set(tok.stop_ids)


def test_bad_gguf_files(gguf_files, tmp_path):
    from llmlab.tokenizer.imported import ImportedTokenizer

    data = gguf_files["llama-bpe"].read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 3])
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    for name in ("cut.gguf", "junk.gguf", "missing.gguf"):
        with pytest.raises(LlmlabError) as e:
            ImportedTokenizer.from_gguf(tmp_path / name)
        assert "\n" not in str(e.value)
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "bert.gguf"), "llama")
    w.add_tokenizer_model("bert")
    w.add_token_list(["a", "b"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(LlmlabError, match="tokenizer model 'bert' is not supported"):
        ImportedTokenizer.from_gguf(tmp_path / "bert.gguf")


def test_cli_import_then_encode_and_show(folders, tmp_path, capsys):
    from llmlab.cli import main

    assert main(["tokenizer", "import", "--hf", str(folders["sp"]), "--out", str(tmp_path / "tok")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "sp_bpe" and summary["add_bos"] and summary["fast_path"]
    assert main(["tokenizer", "encode", "--tokenizer", str(tmp_path / "tok"), "--text", "Hello world"]) == 0
    hf = tokenizers.Tokenizer.from_file(str(folders["sp"] / "tokenizer.json"))
    assert capsys.readouterr().out.split() == [str(i) for i in hf.encode("Hello world", add_special_tokens=False).ids]
    assert main(["tokenizer", "show", "--tokenizer", str(tmp_path / "tok"), "--text", "Hi 🎉"]) == 0
    assert "<0xF0>" not in capsys.readouterr().out  # shown as bytes, not names


def test_tiktoken_style_vocabulary_with_all_split_merges(tmp_path):
    """A vocabulary converted from tiktoken ranks, as Llama-3's tokenizer.json is: every split of a token into
    two tokens listed as a merge, ``ignore_merges``. Same ids as HF, through the fast path."""
    from _tokenizer_builders import LLAMA3_PATTERN, TRAIN
    from llmlab.tokenizer import Tokenizer
    from llmlab.tokenizer.hf import hf_tokenizer_dict
    from llmlab.tokenizer.imported import ImportedTokenizer

    # Without runs of one repeated character (whitespace runs "   "), whose tokens' overlapping splits
    # (" " + "  " and "  " + " ") the fast-path check cannot rule out, and which then take our own loop.
    import re

    text = [re.sub(r"(\s)\1+", r"\1", t) for t in TRAIN]
    native = Tokenizer.train(text, vocab_size=256 + 16 + 200, pattern=LLAMA3_PATTERN)
    data = hf_tokenizer_dict(native)
    vocab = data["model"]["vocab"]
    merges = []
    for s, i in sorted(vocab.items(), key=lambda kv: kv[1]):
        if i >= 256:
            merges += sorted(((s[:k], s[k:]) for k in range(1, len(s)) if s[:k] in vocab and s[k:] in vocab),
                             key=lambda p: (vocab[p[0]], vocab[p[1]]))
    data["model"].update(merges=[list(m) for m in merges], ignore_merges=True)
    assert len(merges) > len(native.merges)  # several merges per token
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    tok = ImportedTokenizer.from_hf(tmp_path)
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert tok.uses_fast_path, tok.spec["fast_path"]
    for text in TEXTS:
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, "all") == want == tok.encode_reference(text, "all"), text
        assert want == native.encode(text, allowed_special="all")
