"""The chat CLI: the REPL driven through stdin (turns, /system, /reset, /save, /load, /explain), the one-shot
--json schema, finish reasons, the synth command and `eval chat`."""

import io
import json

import pytest
import torch
from rich.console import Console

from llmlab.chat.cli import run_repl
from llmlab.cli import main
from llmlab.infer.session import ChatSession
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.runs import save_run_model


class Biased(GPT):
    """A GPT whose logits get a fixed bias: makes greedy output predictable without training."""

    bias: torch.Tensor

    def forward(self, idx, **kw):
        return super().forward(idx, **kw) + self.bias


def _model(tok, favour=None, seed=0):
    torch.manual_seed(seed)
    m = Biased(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=64)).eval()
    m.bias = torch.zeros(tok.vocab_size)
    if favour is not None:
        m.bias[favour] = 100.0
    return m


@pytest.fixture
def run_dir(tmp_path, small_tok):
    torch.manual_seed(0)
    d = tmp_path / "run"
    save_run_model(d, GPT(ModelConfig.preset("tiny", vocab_size=small_tok.vocab_size, max_seq_len=64)), small_tok)
    return d


def _repl(session, text):
    buf = io.StringIO()
    run_repl(session, stdin=io.StringIO(text), console=Console(file=buf, width=200, color_system=None))
    return buf.getvalue()


def test_repl_turns_reset_system_save_load(tmp_path, small_tok):
    x = small_tok.encode("x")[0]
    s = ChatSession(_model(small_tok, favour=x), small_tok, temperature=0, max_new_tokens=3)
    save = tmp_path / "conv.json"
    out = _repl(s, f"hello\nsecond question\n/reset\n/system Be brief.\nthird\n/save {save}\n/quit\nnever read\n")
    assert out.count("assistant> xxx") == 3  # three turns, each cut at 3 tokens
    assert "conversation reset" in out and "system prompt set" in out and "never read" not in out
    saved = json.loads(save.read_text())
    # /reset forgot the first two exchanges; /system put the system prompt first.
    assert saved["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "third"},
                                 {"role": "assistant", "content": "xxx"}]
    s2 = ChatSession(_model(small_tok, favour=x), small_tok)
    out = _repl(s2, f"/load {save}\n/temperature 0\n/top-p 0.5\n/temperature -1\n/explain\n/bogus\n")
    assert "loaded 3 messages" in out and "expected a number" in out and "unknown command" in out
    assert s2.system == "Be brief." and len(s2.history) == 2
    assert (s2.temperature, s2.top_p, s2.explain) == (0.0, 0.5, True)


def test_repl_explain_shows_probabilities(small_tok):
    x = small_tok.encode("x")[0]
    s = ChatSession(_model(small_tok, favour=x), small_tok, temperature=0, max_new_tokens=2)
    out = _repl(s, "/explain\nhi\n")
    assert "token probabilities" in out and "1.00" in out  # the biased token is certain


def test_finish_reasons_and_history(small_tok):
    s = ChatSession(_model(small_tok, favour=small_tok.end_id), small_tok, temperature=0)
    r = s.reply("hi")
    assert (r.text, r.finish_reason) == ("", "stop")
    s = ChatSession(_model(small_tok, favour=small_tok.encode("y")[0]), small_tok, temperature=0, max_new_tokens=4)
    r = s.reply("hi")
    assert (r.text, r.finish_reason, len(r.token_ids)) == ("yyyy", "length", 4)
    # A token that would open another role also ends the answer (and is not part of it).
    s = ChatSession(_model(small_tok, favour=small_tok.special_id("<|user|>")), small_tok, temperature=0)
    assert s.reply("hi").finish_reason == "stop"
    assert [m["role"] for m in s.history] == ["user", "assistant"]


def test_long_conversation_keeps_fitting(small_tok):
    s = ChatSession(_model(small_tok, favour=small_tok.encode("z")[0]), small_tok, temperature=0, max_new_tokens=8,
                    system="S")
    for i in range(12):  # far more than the 64-token context holds
        r = s.reply(f"question number {i} with several words")
        assert r.finish_reason == "length" and r.text == "z" * 8
    assert r.dropped_messages > 0 and r.prompt_tokens <= 64 - 8


def test_one_shot_json_schema(run_dir, capsys):
    assert main(["chat", "--model", str(run_dir), "--prompt", "What is 2 plus 3?", "--system", "Be brief.",
                 "--json", "--temperature", "0", "--max-new-tokens", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"text", "finish_reason", "prompt_tokens", "completion_tokens", "model"}
    assert out["finish_reason"] in ("stop", "length") and isinstance(out["text"], str)
    assert out["completion_tokens"] <= 5


def test_threads_flag_sets_torch_threads(run_dir, capsys):
    before = torch.get_num_threads()
    try:
        assert main(["chat", "--model", str(run_dir), "--prompt", "hi", "--json", "--temperature", "0",
                     "--max-new-tokens", "2", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cli_repl_reads_piped_stdin(run_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n/system Be kind.\n/reset\nagain\n"))
    assert main(["chat", "--model", str(run_dir), "--temperature", "0", "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("assistant> ") == 2 and "conversation reset" in out


def test_cli_errors(run_dir, capsys):
    assert main(["chat", "--prompt", "x"]) == 2
    assert "needs --model" in capsys.readouterr().err
    assert main(["chat", "--model", str(run_dir), "--json"]) == 2


def test_synth_command(tmp_path, capsys):
    assert main(["chat", "synth", "--out", str(tmp_path / "c.jsonl"), "--n-train", "30", "--n-val", "5"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["n_train"], info["n_val"]) == (30, 5)
    assert len((tmp_path / "c.val.jsonl").read_text().splitlines()) == 5


def test_eval_chat_command(run_dir, capsys):
    assert main(["eval", "chat", "--model", str(run_dir), "--base", str(run_dir), "-n", "12",
                 "--max-new-tokens", "6"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert 0 <= rep["sft_format_rate"] <= 1 and 0 <= rep["base_exact_match"] <= 1
    assert rep["n"] == 12 and "exact_match_by_kind" in rep["sft"]


def test_ctrl_c_stops_the_answer_not_the_session(small_tok):
    x = small_tok.encode("x")[0]
    s = ChatSession(_model(small_tok, favour=x), small_tok, temperature=0, max_new_tokens=20)
    pieces = []

    def on_text(piece):
        pieces.append(piece)
        if len(pieces) == 3:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of streaming

    r = s.reply("hi", on_text=on_text)
    assert r.finish_reason == "interrupted" and r.text == "xx"
    assert s.history[-1] == {"role": "assistant", "content": "xx"}  # the partial answer stays
    assert s.reply("again").text == "x" * 20  # and the session goes on


@pytest.mark.slow
def test_real_process_reads_a_pipe(run_dir):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "llmlab", "chat", "--model", str(run_dir), "--temperature", "0",
                           "--max-new-tokens", "3"], input="hello\n/system Be brief.\n/help\nbye\n/quit\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("assistant> ") == 2 and "/temperature X" in proc.stdout
