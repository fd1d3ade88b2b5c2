"""Tokenizers of the kinds Llama-family models ship, built inside the tests (HF ``tokenizers`` trainers, the
``gguf`` writer): no downloads. Used by tests/tokenizer and tests/chat (``import _tokenizer_builders``).

* ``byte_level_folder``: a Llama-3/SmolLM-style byte-level BPE trained on text without emoji, so its vocabulary
  lacks some bytes; ChatML template; bos/eos in tokenizer_config.json, two eos ids in generation_config.json.
* ``sp_folder``: a Llama-2/TinyLlama-style SentencePiece BPE (``▁``, ``<0xNN>`` byte fallback, ``<unk>``,
  ``<s>``/``</s>``, add-BOS post-processor), trained with HF's BpeTrainer on Metaspace words; Llama-2 template.
* ``write_gguf``: the same vocabularies as GGUF tokenizer metadata (``gpt2`` with a named pre-tokenizer, or
  ``llama`` with scores from the merge ranks), plus the few llama hyperparameters llama.cpp reads.
"""

from __future__ import annotations

import json
from pathlib import Path

LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                  r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

TRAIN = ([
    "Hello world! This is a test of the tokenizer. It's 2024; we've got 1234567 apples, they'll say.",
    "def f(x):\n    return x * 2  # comment\n\n\tclass A:\n        pass\n",
    "The quick brown fox jumps over the lazy dog. To be, or not to be, that is the question.",
    "What is 12 plus 7? It is 19. Who are you? I am a helpful assistant.",
    "Symbols: x < y | z_w > 0; [INST] {a: 1} @#$%^&*=+~`\\/\" SYS Sure ok.",
] * 30 + ["中文分词测试，大型语言模型是如何工作的？你好世界。"] * 6)

# English, code, Chinese (partly outside the vocabularies), emoji (outside them), whitespace, special-token text.
TEXTS = [
    "Hello world! It's 2024; we've got 1234567 apples, they'll say.",
    "def f(x):\n    return x**2  # comment\n\n\n\tend   ",
    "中文分词测试：大型语言模型是如何工作的？",
    "café naïve Ωμέγα Привет 🌍🎉 ok 👍🏽",
    "  leading spaces\r\n\r\n  x",
    "<|im_start|>user\nhi<|im_end|>\n",
    "<s>[INST] Hello [/INST] world</s>",
    "",
]

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'"
          " + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)


def byte_level_folder(path: Path, *, template: str | None = CHATML, vocab_size: int = 600,
                      digits: bool = False) -> Path:
    """A byte-level BPE folder. ``digits``: SmolLM's pre-tokenizer (Digits + ByteLevel's GPT-2 regex)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    if digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    tok.train_from_iterator(TRAIN, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                       show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 0)])
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
              "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    if template:
        config["chat_template"] = template
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 3], "bos_token_id": 0}))
    return path


def sp_folder(path: Path, *, template: str | None = LLAMA2, vocab_size: int = 420, legacy: bool = False) -> Path:
    """A Llama-2-style SentencePiece BPE folder. ``legacy``: the older Prepend/Replace normalizer instead of the
    Metaspace pre-tokenizer with prepend_scheme "first"."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    t = Tokenizer(models.BPE())
    # SentencePiece never merges across a space: train on Metaspace words, then encode whole texts as Llama-2's
    # tokenizer.json does (split=False).
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    t.train_from_iterator(TRAIN, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False))
    d = json.loads(t.to_str())
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for s, _ in sorted(d["model"]["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(s, len(vocab))
    d["model"].update(vocab=vocab, byte_fallback=True, fuse_unk=True, unk_token="<unk>")
    d["added_tokens"] = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    if legacy:
        d["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        d["pre_tokenizer"] = None
    else:
        d["normalizer"] = None
        d["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    d["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    d["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "tokenizer.json").write_text(json.dumps(d, ensure_ascii=False))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False}
    if template:
        config["chat_template"] = template
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return path


def write_gguf(path: Path, hf_folder: Path, model: str, pre: str | None = None, template: str | None = None) -> Path:
    """The HF folder's vocabulary as a GGUF file with no tensors (llama.cpp loads it with ``vocab_only``)."""
    import gguf

    d = json.loads((hf_folder / "tokenizer.json").read_text())
    vocab = d["model"]["vocab"]
    added = {a["id"]: a for a in d["added_tokens"]}
    n = max([*vocab.values(), *added]) + 1
    tokens = [""] * n
    for s, i in vocab.items():
        tokens[i] = s
    for i, a in added.items():
        tokens[i] = a["content"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in d["model"]["merges"]]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_rope_dimension_count(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n)
    w.add_tokenizer_model(model)
    types = []
    for i, s in enumerate(tokens):
        if i in added:
            types.append(gguf.TokenType.CONTROL)
        elif model == "llama" and len(s) == 6 and s.startswith("<0x"):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    w.add_token_list(tokens)
    if model == "gpt2":
        w.add_token_types(types)
        w.add_tokenizer_pre(pre)
        w.add_token_merges(merges)
        w.add_bos_token_id(0)
        w.add_eos_token_id(2)
        w.add_pad_token_id(3)
    else:
        types[0] = gguf.TokenType.UNKNOWN
        w.add_token_types(types)
        rank: dict[str, int] = {}
        for r, m in enumerate(merges):
            a, b = m.split(" ")
            rank.setdefault(a + b, r)
        # SentencePiece scores: a token made earlier scores higher; the rest never come from a merge.
        w.add_token_scores([-float(rank[s]) if s in rank else -1e6 for s in tokens])
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
    if template:
        w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
