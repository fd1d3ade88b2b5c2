"""Tests for the byte-level BPE tokenizer: training by hand, round trips, tiktoken == reference, special tokens,
save/load, bad inputs, the CLI and Hugging Face parity.

    .venv/bin/pytest tests/tokenizer -q            # add -m "not slow" to skip the full-corpus training
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.tokenizer import GPT2_PATTERN, SPECIAL_TOKENS, Tokenizer
from llmlab.tokenizer import bpe
from llmlab.tokenizer.bpe import count_chunks, train_merges

MIXED = [
    "",
    "To be, or not to be, that is the question:",
    "Hello world! It's 2024; we've got 1234567 apples, they'll say.",
    "中文分词测试：大型语言模型是如何工作的？你好，世界。",
    "日本語のテキストと한국어 텍스트",
    "emoji 🌍🎉👩‍👩‍👧‍👦 and flags 🇫🇷 ✨",
    "   leading spaces\n\n\n\ttabs\t\t and   runs     \r\n\r\n",
    "numbers 3.14159 1,000,000 007 and 12abc34",
    "accents: héllo naïve café Ωμέγα Привет мир",
    "code: def f(x):\n    return x**2  # comment\n",
    "\x00\x01 control \x7f chars \u200b zero-width",
]


def _training_text() -> str:
    from llmlab.data.corpus import standard_split

    train, _ = standard_split()
    # A slice of Shakespeare plus every test string, so multi-byte characters get merges of their own too.
    return train[:300_000] + "\n".join(MIXED * 20)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(_training_text(), vocab_size=800)


# ---------------------------------------------------------------- training


def test_first_merges_known_by_hand():
    # "aaabdaaabac": aa occurs 4 times -> Z=aa; then ab (2) ties with Z a (2): the smaller pair (97, 98) wins;
    # then Z Y (2).
    merges = train_merges(count_chunks("aaabdaaabac"), 3)
    assert merges == [(97, 97), (97, 98), (256, 257)]
    tok = Tokenizer(merges)
    assert tok.token_bytes(258) == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_tie_break_is_smallest_pair_and_chunks_do_not_merge_across_split():
    # The GPT-4 pattern cuts "ab cd" into "ab" and " cd": pairs (97,98), (32,99), (99,100) all occur once.
    merges = train_merges(count_chunks("ab cd"), 3)
    assert merges == [(32, 99), (97, 98), (256, 100)]
    with pytest.raises(LlmlabError, match="supports only 3 merges"):
        train_merges(count_chunks("ab cd"), 4)


def test_overlapping_pairs_merge_left_to_right():
    merges = train_merges(count_chunks("aaa"), 1)
    assert merges == [(97, 97)]
    assert Tokenizer(merges).encode("aaa") == [256, 97]


def test_counts_weight_pairs():
    # Counts are per occurrence of a chunk: (121, 122) is the smaller pair but "xy" occurs 3 times.
    merges = train_merges({b"yz": 1, b"xy": 3}, 2)
    assert merges == [(120, 121), (121, 122)]


def _naive_merges(chunk_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """Textbook BPE: recount every pair before every merge (slow, obviously right)."""
    words = {tuple(c): n for c, n in chunk_counts.items()}
    merges = []
    for step in range(num_merges):
        pairs: dict[tuple[int, int], int] = {}
        for w, n in words.items():
            for p in zip(w, w[1:]):
                pairs[p] = pairs.get(p, 0) + n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        new_words: dict[tuple[int, ...], int] = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(256 + step)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + n
        words = new_words
    return merges


@pytest.mark.parametrize("phases", ["flat", "incremental", "both"])
@pytest.mark.parametrize("seed", range(6))
def test_trainer_equals_full_recount(seed, phases, monkeypatch):
    # Every merge in the flat (numpy) phase, every merge in the incremental phase, or a switch part way.
    rng = random.Random(seed)
    # Small alphabets make long runs, repeated pairs and overlaps (a a a, a b a b) likely.
    alphabet = ["a", "b", "c", " ", "ab", "aaa", "\n", "é", "1"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(200, 800)))
    counts = count_chunks(text)
    naive = _naive_merges(counts, 60)
    first = naive[0]
    sites = sum(1 for c in counts for p in zip(c, c[1:]) if p == first)  # positions among the unique chunks
    monkeypatch.setattr(bpe, "_FLAT_MIN_SITES", {"flat": 0, "incremental": float("inf"), "both": sites / 3}[phases])
    ran: list[int] = []
    real_run = bpe._FlatPhase.run

    def run(self, n):
        merges = real_run(self, n)
        ran.append(len(merges))  # how many merges the flat phase made
        return merges

    monkeypatch.setattr(bpe._FlatPhase, "run", run)
    assert train_merges(counts, len(naive)) == naive
    flat = ran[0]
    assert {"flat": flat == len(naive), "incremental": flat == 0, "both": 0 < flat < len(naive)}[phases], flat


def test_flat_phase_stops_at_the_last_pair(monkeypatch):
    monkeypatch.setattr(bpe, "_FLAT_MIN_SITES", 0)
    assert train_merges(count_chunks("ab cd"), 3) == [(32, 99), (97, 98), (256, 100)]
    with pytest.raises(LlmlabError, match="supports only 3 merges"):
        train_merges(count_chunks("ab cd"), 4)


def test_parallel_counting_equals_serial(monkeypatch):
    import llmlab.tokenizer.bpe as bpe

    text = "".join(MIXED * 40) + _training_text()[:20_000]
    serial = count_chunks(text, num_workers=1)
    monkeypatch.setattr(bpe, "_BATCH_CHARS", 2_000)
    monkeypatch.setattr(bpe, "_PARALLEL_MIN_CHARS", 0)
    assert count_chunks(text, num_workers=2) == serial
    assert count_chunks([text, "", text], num_workers=2) == Counter({k: 2 * v for k, v in serial.items()})


def test_special_tokens_take_the_last_ids(tok):
    assert list(tok.special_tokens) == list(SPECIAL_TOKENS)
    assert tok.vocab_size == 800
    assert sorted(tok.special_tokens.values()) == list(range(800 - len(SPECIAL_TOKENS), 800))
    assert tok.bos_id == tok.special_tokens["<|bos|>"] == 800 - 16
    assert tok.eot_id == tok.special_id("<|endoftext|>") == tok.special_id("endoftext")
    assert tok.end_id == tok.special_id("end") and tok.pad_id == tok.special_id("pad")
    assert tok.is_special(tok.end_id) and not tok.is_special(65)
    assert tok.token_bytes(tok.end_id) == b"<|end|>"
    with pytest.raises(LlmlabError, match="unknown special token"):
        tok.special_id("nope")


# ---------------------------------------------------------------- encoding


@pytest.mark.parametrize("text", MIXED)
def test_round_trip_and_reference_equals_fast_path(tok, text):
    ids = tok.encode(text)
    assert ids == tok.encode_reference(text)
    assert tok.decode(ids) == text
    assert b"".join(tok.token_bytes(i) for i in ids) == text.encode("utf-8")
    assert all(0 <= i < tok.vocab_size - len(SPECIAL_TOKENS) for i in ids)


def test_reference_equals_fast_path_on_corpus_and_random_text(tok):
    from llmlab.data.corpus import standard_split

    _, val = standard_split()
    sample = val[:100_000]
    assert tok.encode(sample) == tok.encode_reference(sample)
    rng = random.Random(0)
    alphabet = [chr(c) for c in [*range(32, 127), *range(0xA0, 0x250), *range(0x4E00, 0x4E40), 0x1F30D, 0x1F389]]
    alphabet += [" ", "  ", "\n", "\t", "'s", "'LL"]
    for _ in range(200):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        ids = tok.encode(s)
        assert ids == tok.encode_reference(s), s
        assert tok.decode(ids) == s


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_exact_on_tiny_alphabets(seed):
    # Few symbols make long chunks full of overlapping and competing merges (a a a, ab a, a ba): the cases
    # where encoding by merge order and tiktoken's rank of the joined bytes could part ways.
    rng = random.Random(seed)
    alpha = [["a", "b"], ["a", "b", "c"], ["a", "aa", "b", " a"], ["x", "y", " ", "\n"], ["é", "e", "ab"]][seed % 5]
    tok = Tokenizer.train("".join(rng.choice(alpha) for _ in range(2000)), rng.randint(280, 380))
    for _ in range(20):
        s = "".join(rng.choice(alpha) for _ in range(rng.randint(0, 200)))
        assert tok.encode(s) == tok.encode_reference(s), s


def test_encode_batch_matches_encode(tok):
    texts = MIXED * 3
    assert tok.encode_batch(texts, num_threads=2) == [tok.encode(t) for t in texts]
    assert tok.encode_batch(["<|end|>x"], allowed_special="all") == [[tok.end_id, *tok.encode("x")]]


def test_special_tokens_never_from_user_text(tok):
    text = "<|bos|>Hi<|user|>x<|end|><|endoftext|>"
    for ids in (tok.encode(text), tok.encode_reference(text), tok.encode_batch([text])[0]):
        assert not any(tok.is_special(i) for i in ids)
        assert tok.decode(ids) == text


def test_special_tokens_when_allowed(tok):
    text = "<|bos|><|user|>Hi there<|end|><|assistant|>Hello<|end|>"
    ids = tok.encode(text, allowed_special="all")
    assert ids == tok.encode_reference(text, allowed_special="all")
    assert ids[:2] == [tok.bos_id, tok.special_id("user")]
    assert ids[-1] == tok.end_id
    assert tok.decode(ids) == text
    # Only the listed ones are recognised.
    partial = tok.encode(text, allowed_special={"<|end|>"})
    assert partial == tok.encode_reference(text, allowed_special={"<|end|>"})
    assert [i for i in partial if tok.is_special(i)] == [tok.end_id, tok.end_id]
    with pytest.raises(LlmlabError, match="unknown special tokens"):
        tok.encode(text, allowed_special={"<|nope|>"})


def test_lone_surrogates_become_replacement_character(tok):
    raw = b"ok \xff\xfe bytes \xe4\xb8"  # not valid UTF-8
    text = raw.decode("utf-8", errors="surrogateescape")  # lone surrogates \udcff \udcfe ...
    ids = tok.encode(text)
    assert ids == tok.encode_reference(text)
    # Each lone surrogate is one U+FFFD, as tiktoken does it.
    assert tok.decode(ids) == "ok \ufffd\ufffd bytes \ufffd\ufffd"
    assert ids == tok.encode("ok \ufffd\ufffd bytes \ufffd\ufffd")
    assert tok.encode("\ud800") == tok.encode("\ufffd")


def test_decode_bytes_of_partial_characters(tok):
    ids = tok.encode("世界")
    b = "世界".encode()
    for k in range(len(ids) + 1):
        head = tok.decode_bytes(ids[:k])
        assert b.startswith(head)
        assert tok.decode(ids[:k]) == head.decode("utf-8", errors="replace")
    with pytest.raises(LlmlabError, match="out of range"):
        tok.decode([tok.vocab_size])


# ---------------------------------------------------------------- save / load, bad input


def test_save_load_identity(tok, tmp_path):
    path = tok.save(tmp_path / "t")
    data = json.loads(path.read_text())
    assert data["format"] == "llmlab-bpe" and data["version"] == 1 and data["vocab_size"] == 800
    back = Tokenizer.load(tmp_path / "t")
    assert back.merges == tok.merges and back.special_tokens == tok.special_tokens and back.pattern == tok.pattern
    for text in MIXED:
        assert back.encode(text) == tok.encode(text)


def test_pickle_and_array_ids(tok):
    import pickle

    import numpy as np

    text = "Pickled for a DataLoader worker 世界"
    back = pickle.loads(pickle.dumps(tok))
    assert back.encode(text) == tok.encode(text)
    ids = tok.encode(text)
    assert tok.decode(np.array(ids, dtype=np.int64)) == text
    with pytest.raises(LlmlabError, match="must be an integer"):
        Tokenizer.train("hello", 300.0)


def test_custom_pattern_survives_save_load(tmp_path):
    t = Tokenizer.train("hello hello world, it's 12345", 280, pattern="gpt2")
    assert t.pattern == GPT2_PATTERN
    t.save(tmp_path)
    assert Tokenizer.load(tmp_path).pattern == GPT2_PATTERN


def test_bad_inputs(tmp_path):
    with pytest.raises(LlmlabError, match="training text is empty"):
        Tokenizer.train("", 300)
    with pytest.raises(LlmlabError, match="training text is empty"):
        Tokenizer.train([], 300)
    with pytest.raises(LlmlabError, match="at least 256 bytes \\+ 16 special tokens = 272"):
        Tokenizer.train("hello", 271)
    with pytest.raises(LlmlabError, match="supports only"):
        Tokenizer.train("hello", 100_000)
    with pytest.raises(LlmlabError, match="bad split pattern"):
        Tokenizer.train("hello", 300, pattern="(unclosed")
    with pytest.raises(LlmlabError, match="not found"):
        Tokenizer.load(tmp_path / "missing")
    (tmp_path / "tokenizer.json").write_text('{"format": "other"}')
    with pytest.raises(LlmlabError, match="not an llmlab tokenizer"):
        Tokenizer.load(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"format": "llmlab-bpe", "version": 99}')
    with pytest.raises(LlmlabError, match="version 99"):
        Tokenizer.load(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"format": "llmlab-bpe", "version": 1, "merges": [[1, 2]]}')
    with pytest.raises(LlmlabError, match="malformed"):
        Tokenizer.load(tmp_path)
    good = tmp_path / "good"
    Tokenizer([(97, 98)]).save(good)
    data = json.loads((good / "tokenizer.json").read_text())
    data["vocab_size"] = 300
    (good / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(LlmlabError, match='"vocab_size" is 300 but .* make 273'):
        Tokenizer.load(good)
    with pytest.raises(LlmlabError, match="does not exist yet"):
        Tokenizer([(1, 300)])
    # Valid for the `regex` module, not for tiktoken's engine: training works, fast encoding says why not.
    odd = Tokenizer.train("hello world", 280, pattern=r"\m\w+|\s+")
    assert odd.decode(odd.encode_reference("hello")) == "hello"
    with pytest.raises(LlmlabError, match="not supported by tiktoken"):
        odd.encode("hello")


# ---------------------------------------------------------------- CLI


def test_cli_train_encode_decode_show(tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text(_training_text()[:50_000], encoding="utf-8")
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", "--input", str(src), "--vocab-size", "400", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vocab_size"] == 400 and summary["merges"] == 400 - 256 - 16
    assert summary["seconds"] >= 0 and summary["bytes_per_token"] > 1.0
    tok = Tokenizer.load(out)
    assert summary["bytes_per_token"] == round(50_000 / len(tok.encode(src.read_text())), 4)

    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--text", "To be<|end|>"]) == 0
    ids = [int(x) for x in capsys.readouterr().out.split()]
    assert ids == tok.encode("To be<|end|>") and tok.end_id not in ids
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--text", "To be<|end|>", "--allow-special"]) == 0
    assert [int(x) for x in capsys.readouterr().out.split()][-1] == tok.end_id

    assert main(["tokenizer", "decode", "--tokenizer", str(out), "--ids", " ".join(map(str, ids))]) == 0
    assert capsys.readouterr().out == "To be<|end|>"

    assert main(["tokenizer", "show", "--tokenizer", str(out), "--text", "<|user|>Hi 世", "--allow-special"]) == 0
    shown = capsys.readouterr().out
    assert "[special]" in shown and "e4" in shown and f"{tok.special_id('user')}" in shown


def test_cli_errors(tmp_path, capsys):
    assert main(["tokenizer", "show", "--tokenizer", str(tmp_path / "none"), "--text", "x"]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    assert main(["tokenizer", "train", "--input", str(bad), "--vocab-size", "300", "--out", str(tmp_path / "o")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["tokenizer", "train", "--input", str(tmp_path / "nofile"), "--vocab-size", "300",
                 "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err


# ---------------------------------------------------------------- Hugging Face parity


def test_hf_tokenizers_parity(tok, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from llmlab.data.corpus import standard_split

    hf = tokenizers.Tokenizer.from_file(str(tok.export_hf(tmp_path)))
    assert hf.get_vocab_size() == tok.vocab_size
    texts = [t for t in MIXED if t] + [standard_split()[1][:50_000]]
    for text in texts:
        assert hf.encode(text).ids == tok.encode(text), text
        assert hf.decode(tok.encode(text)) == text
    chat = "<|bos|><|user|>Hi 世界<|end|><|assistant|>"
    assert hf.encode(chat).ids == tok.encode(chat, allowed_special="all")
    tokens, merges = tok.hf_tokens_and_merges()
    assert len(tokens) == tok.vocab_size and len(merges) == len(tok.merges)
    assert tokens[32] == "Ġ" and tokens[10] == "Ċ" and tokens[tok.end_id] == "<|end|>"


def test_transformers_parity(tok, tmp_path):
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tok.export_hf(tmp_path / "tokenizer.json")))
    for text in [t for t in MIXED if t]:
        assert fast.encode(text, add_special_tokens=False) == tok.encode(text), text
    assert fast.decode(tok.encode("héllo 世界 🌍")) == "héllo 世界 🌍"


# ---------------------------------------------------------------- full corpus


@pytest.mark.slow
def test_full_corpus_4096():
    from llmlab.data.corpus import standard_split

    train, val = standard_split()
    t = Tokenizer.train(train, 4096)
    assert t.vocab_size == 4096
    ids = t.encode(val)
    assert len(val.encode()) / len(ids) > 3.0  # ~3.2 bytes/token; a broken trainer would be far lower
    assert t.encode(val[:200_000]) == t.encode_reference(val[:200_000])
    assert t.decode(ids) == val
