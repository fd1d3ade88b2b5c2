"""``llmlab generate`` / ``llmlab next`` through ``llmlab.cli.main`` on a tiny run folder saved in the test:
the --json schema, n samples, logprobs, --explain with a PNG, streaming, and user errors as exit code 2.

    .venv/bin/pytest tests/infer/test_infer_cli.py -q
"""

import json

import pytest
import torch

from llmlab.cli import main
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.runs import save_run_model
from llmlab.tokenizer.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    tok = Tokenizer.train("The cat sat on a mat. 床前明月光。 To be, or not to be. " * 5, vocab_size=300)
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size))
    save_run_model(d, model, tok)
    return d


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_json_schema(run, capsys):
    code, out, _ = run_cli(capsys, "generate", "--model", str(run), "--prompt", "The cat", "--max-new-tokens", "6",
                           "--seed", "0", "--n", "2", "--logprobs", "2", "--ignore-eos", "--json", "--top-k", "50")
    assert code == 0
    obj = json.loads(out)
    for key, typ in [("text", str), ("token_ids", list), ("finish_reason", str), ("logprobs", list),
                     ("prefill_tokens_per_sec", float), ("decode_tokens_per_sec", float), ("choices", list)]:
        assert isinstance(obj[key], typ), key
    assert len(obj["token_ids"]) == 6 and obj["finish_reason"] == "length" and len(obj["choices"]) == 2
    assert obj["prefill_tokens_per_sec"] > 0 and obj["decode_tokens_per_sec"] > 0
    lp = obj["logprobs"][0]
    assert set(lp) == {"token_id", "token", "logprob", "top"} and len(lp["top"]) == 2 and lp["logprob"] <= 0
    assert obj["choices"][0]["token_ids"] == obj["token_ids"]
    # Same seed, same output.
    _, out2, _ = run_cli(capsys, "generate", "--model", str(run), "--prompt", "The cat", "--max-new-tokens", "6",
                         "--seed", "0", "--n", "2", "--logprobs", "2", "--ignore-eos", "--json", "--top-k", "50")
    assert json.loads(out2)["choices"] == obj["choices"]


def test_generate_text_stream_explain_and_next(run, capsys, tmp_path):
    code, out, err = run_cli(capsys, "generate", "--model", str(run), "--prompt", "To be", "--greedy",
                             "--max-new-tokens", "5", "--ignore-eos", "--stream")
    assert code == 0 and "decode" in err
    code, out2, _ = run_cli(capsys, "generate", "--model", str(run), "--prompt", "To be", "--greedy",
                            "--max-new-tokens", "5", "--ignore-eos")
    assert out2.startswith("To be") and out2[len("To be"):] == out  # streamed text == the final text
    png = tmp_path / "dist.png"
    code, out, _ = run_cli(capsys, "generate", "--model", str(run), "--prompt", "The cat sat on a", "--greedy",
                           "--max-new-tokens", "3", "--ignore-eos", "--explain", "--plot", str(png))
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG" and "%" in out
    code, out, _ = run_cli(capsys, "next", "--model", str(run), "--prompt", "The cat sat on a", "--top", "4", "--json")
    cands = json.loads(out)["candidates"]
    assert code == 0 and len(cands) == 4 and all(a["prob"] >= b["prob"] for a, b in zip(cands, cands[1:]))
    code, out, _ = run_cli(capsys, "next", "--model", str(run), "--prompt", "The cat sat on a", "--top", "3")
    assert code == 0 and out.count("%") == 3


def test_user_errors_exit_2(run, capsys):
    long = "To be, or not to be. " * 40  # far more tokens than the tiny model's 64-token context
    code, _, err = run_cli(capsys, "generate", "--model", str(run), "--prompt", long)
    assert code == 2 and "context" in err
    code, out, _ = run_cli(capsys, "generate", "--model", str(run), "--prompt", long, "--truncate", "left",
                           "--max-new-tokens", "3", "--json", "--greedy", "--ignore-eos")
    assert code == 0 and json.loads(out)["prompt_tokens"] == 63
    code, _, err = run_cli(capsys, "generate", "--model", str(run), "--prompt", "x", "--top-p", "0")
    assert code == 2 and "top_p" in err
    code, _, err = run_cli(capsys, "generate", "--model", str(run), "--prompt", "x", "--logit-bias", "5")
    assert code == 2 and "ID=BIAS" in err
    code, _, err = run_cli(capsys, "generate", "--model", str(run) + "-missing", "--prompt", "x")
    assert code == 2
