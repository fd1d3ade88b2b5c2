"""The "two files": ``llmlab export bin`` + ``llmlab/standalone/run.py`` (numpy only).

run.py's hand-written GPT-4 split equals the regex on varied and random text, its encoder equals our
tokenizer, and its greedy output (run as a subprocess) is token-identical to our model's.

    .venv/bin/pytest tests/export/test_standalone.py -q
"""

from __future__ import annotations

import ast
import importlib.util
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import regex

import llmlab
from llmlab.cli import main
from llmlab.tokenizer.bpe import GPT4_PATTERN

from .conftest import PROMPTS, greedy_ours, make_run

RUN_PY = Path(llmlab.__file__).parent / "standalone" / "run.py"

TEXTS = PROMPTS + [
    "", " ", "  ", "\n", "a", "'s", "'S", "'ſ", "don'T", "I'LL WE'VE THEY'RE", "'ll'd'x", "x'sy",
    "   leading spaces\n\n\n\ttabs\t\t and   runs     \r\n\r\n", "numbers 3.14159 1,000,000 007 12abc34 ²³ Ⅻ",
    "\x00\x01 control \x7f chars \u200b zero-width \x1c\x1d\x1e\x1f sep", "a\xa0b \u3000c\u2028d\u2029e",
    "!!! ?? ... --> (x) [y] {z}\n\n", " !x", " \n!", "\r\r\n\n  \t", "tail spaces   ", "日本語のテキストと한국어 텍스트",
    "emoji 🌍🎉👩‍👩‍👧‍👦 flags 🇫🇷 ✨", "<|user|>hi<|end|><|assistant|>", "lone \udc80 surrogate",
]
ALPHABET = list("aZé中ſ'0٣² \t\n\r\xa0\x1c.,!?-_🎉\u200b") + ["'s", "'ll", " x", "12345", "\r\n"]


@pytest.fixture(scope="module")
def runpy():
    spec = importlib.util.spec_from_file_location("llmlab_standalone_run", RUN_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def model_bin(tiny_run, tmp_path_factory):
    run, model, tok = tiny_run
    out = tmp_path_factory.mktemp("bin") / "model.bin"
    assert main(["export", "bin", "--model", str(run), "--out", str(out)]) == 0
    return out, model, tok


@pytest.fixture(scope="module")
def standalone_tok(runpy, model_bin):
    header, w = runpy.load(model_bin[0])
    return runpy.Tokenizer(header["tokenizer"], w["merges"])


def _random_texts(n=300, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 25))) for _ in range(n)]


def test_split_equals_gpt4_regex(standalone_tok):
    pat = regex.compile(GPT4_PATTERN)
    for text in TEXTS[:-1] + _random_texts():  # (the surrogate text is cleaned by encode, not split)
        assert standalone_tok.split(text) == pat.findall(text), repr(text)


def test_contraction_letters_cover_case_insensitive_matches(runpy):
    """Every code point that (?i:[sdmtlvre]) accepts is in run.py's FOLD table, and nothing else."""
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    want = set(regex.findall(r"(?i:[sdmtlvre])", everything))
    assert want == set("".join(runpy.Tokenizer.FOLD.values()))


def test_encode_equals_our_tokenizer(standalone_tok, model_bin):
    _, _, tok = model_bin
    for text in TEXTS + _random_texts(100, seed=1):
        assert standalone_tok.encode(text) == tok.encode(text, allowed_special="all"), repr(text)


def _run(model_file, prompt, *extra):
    cmd = [sys.executable, str(RUN_PY), str(model_file), "--prompt", prompt, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_greedy_is_token_identical_to_our_model(model_bin):
    path, model, tok = model_bin
    stop = {tok.end_id, tok.eot_id}
    for prompt in (PROMPTS[0], PROMPTS[2], PROMPTS[4]):
        want = greedy_ours(model, [tok.bos_id] + tok.encode(prompt), 48, stop)
        r = _run(path, prompt, "--max-new-tokens", "48", "--temperature", "0", "--ids")
        assert r.returncode == 0, r.stderr
        assert [int(x) for x in r.stdout.split()] == want
    # Text mode prints the decoded continuation.
    r = _run(path, PROMPTS[0], "--max-new-tokens", "20", "--temperature", "0")
    want = greedy_ours(model, [tok.bos_id] + tok.encode(PROMPTS[0]), 20, stop)
    assert r.stdout.rstrip("\n") == tok.decode([i for i in want if i not in stop])


def test_sampling_is_seeded_and_top_p_narrows(model_bin):
    path, model, tok = model_bin
    args = ("--max-new-tokens", "24", "--temperature", "1.0", "--ids")
    a, b = _run(path, "Speak", *args, "--seed", "3"), _run(path, "Speak", *args, "--seed", "3")
    c = _run(path, "Speak", *args, "--seed", "4")
    assert a.stdout == b.stdout and a.stdout != c.stdout
    # A nucleus so small it holds only the most likely token is greedy decoding.
    tiny = _run(path, "Speak", "--max-new-tokens", "24", "--temperature", "1.0", "--top-p", "1e-9", "--ids")
    want = greedy_ours(model, [tok.bos_id] + tok.encode("Speak"), 24, {tok.end_id, tok.eot_id})
    assert [int(x) for x in tiny.stdout.split()] == want


def test_run_py_is_small_and_numpy_only():
    src = RUN_PY.read_text()
    assert len(src.splitlines()) <= 500
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "argparse", "bisect", "codecs", "json", "re", "struct", "sys", "time", "numpy"}


def test_bin_header_and_bad_file(model_bin, tmp_path):
    path, _, _ = model_bin
    raw = path.read_bytes()
    assert raw[:4] == b"LLMB" and struct.unpack("<I", raw[4:8])[0] == 1
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + raw[4:64])
    r = _run(bad, "x")
    assert r.returncode != 0 and "not a model.bin" in r.stderr


def test_export_bin_without_weights_is_an_error(tiny_run, tmp_path, capsys):
    run, _, _ = tiny_run
    empty = tmp_path / "no_weights"
    empty.mkdir()
    (empty / "model_config.json").write_text((run / "model_config.json").read_text())
    assert main(["export", "bin", "--model", str(empty), "--out", str(tmp_path / "m.bin")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llmlab: error: ") and "weights not found" in err and "\n" not in err


def test_greedy_matches_our_engine(model_bin):
    """The same continuation from llmlab's inference engine (KV cache, batched) and from run.py."""
    from llmlab.infer import Engine, SamplingParams

    path, model, tok = model_bin
    engine = Engine(model, eos_token_ids=[tok.end_id, tok.eot_id])
    prompt = PROMPTS[1]
    out = engine.generate([[tok.bos_id] + tok.encode(prompt)], SamplingParams(temperature=0, max_new_tokens=40))
    r = _run(path, prompt, "--max-new-tokens", "40", "--temperature", "0", "--ids")
    assert [int(x) for x in r.stdout.split()] == out[0].samples[0].token_ids


def test_greedy_untied_head(tiny_run_untied, tmp_path):
    """An untied output head (stored as lm_head.weight in model.bin) and 4 kv heads."""
    run, model, tok = tiny_run_untied
    path = tmp_path / "untied.bin"
    assert main(["export", "bin", "--model", str(run), "--out", str(path)]) == 0
    want = greedy_ours(model, [tok.bos_id] + tok.encode(PROMPTS[3]), 32, {tok.end_id, tok.eot_id})
    r = _run(path, PROMPTS[3], "--max-new-tokens", "32", "--temperature", "0", "--ids")
    assert [int(x) for x in r.stdout.split()] == want


def test_greedy_with_another_head_size_and_rope_scaling(tmp_path):
    """Imported models' shapes: head_dim 24 (not d_model / n_head = 16) and Llama-3 RoPE scaling. The file is
    version 2, which only such configs need."""
    scaling = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}
    model, tok = make_run(tmp_path / "run", head_dim=24, rope_scaling=scaling)
    path = tmp_path / "m.bin"
    assert main(["export", "bin", "--model", str(tmp_path / "run"), "--out", str(path)]) == 0
    assert struct.unpack("<I", path.read_bytes()[4:8])[0] == 2
    want = greedy_ours(model, [tok.bos_id] + tok.encode(PROMPTS[0]), 40, {tok.end_id, tok.eot_id})
    r = _run(path, PROMPTS[0], "--max-new-tokens", "40", "--temperature", "0", "--ids")
    assert [int(x) for x in r.stdout.split()] == want
