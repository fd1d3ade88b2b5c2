"""The shared training loop and pretraining: schedule, loss falls, NaN guard, checkpoints, bad inputs, CLI.

    .venv/bin/pytest tests/train/test_loop.py -q
"""

import json
import math

import pytest
import torch

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.train.data import TokenBatches
from llmlab.train.loop import TrainConfig, cross_entropy_loss, default_param_groups, lr_factor, train

TINY = ["--preset", "tiny", "--seq-len", "32", "--batch-size", "4", "--no-progress", "--samples", "1"]


def test_lr_schedules():
    c = TrainConfig(lr=1.0, warmup_steps=10, schedule="cosine", min_lr_frac=0.1, max_steps=100)
    assert lr_factor(c, 0, 0.0) == pytest.approx(0.1)
    assert lr_factor(c, 9, 0.09) == pytest.approx(1.0)
    assert lr_factor(c, 50, 0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(c, 100, 1.0) == pytest.approx(0.1)
    w = TrainConfig(warmup_steps=0, schedule="wsd", cooldown_frac=0.2, max_steps=100)
    assert lr_factor(w, 50, 0.5) == 1.0 and lr_factor(w, 90, 0.9) == pytest.approx(0.5)
    assert lr_factor(TrainConfig(warmup_steps=0, schedule="constant", max_steps=1), 5, 0.99) == 1.0


def test_weight_decay_only_on_matrices():
    m = GPT(ModelConfig.preset("tiny", vocab_size=300))
    decay, no_decay = default_param_groups(m, 0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    assert all(p.dim() == 2 and "embed" not in names[id(p)] for p in decay["params"])
    assert any("embed" in names[id(p)] for p in no_decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"] if "embed" not in names[id(p)])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(m.parameters()))


def _batches(tok, text, seq_len=32, batch_size=8, seed=0):
    import numpy as np

    ids = np.array([tok.bos_id] + tok.encode(text), dtype=np.uint16)
    return TokenBatches([ids], batch_size, seq_len, tok.bos_id, seed=seed)


def test_loss_falls_on_tiny_corpus(tmp_path, tok_dir, small_text):
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.load(tok_dir)
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=32))
    cfg = TrainConfig(lr=1e-2, max_steps=60, warmup_steps=5, seq_len=32, batch_size=8, save_every=0)
    res = train(model, cfg, _batches(tok, small_text), cross_entropy_loss, tmp_path, tokenizer=tok, progress=False)
    losses = [r["loss"] for r in res.history]
    assert losses[0] > math.log(tok.vocab_size) - 0.5
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0, losses[::10]
    for f in ("model.safetensors", "model_config.json", "summary.json", "loss.png", "metrics.jsonl", "config.json"):
        assert (tmp_path / f).is_file(), f
    cfg_json = json.loads((tmp_path / "config.json").read_text())
    assert cfg_json["train"]["lr"] == 1e-2 and cfg_json["model"]["vocab_size"] == tok.vocab_size


def test_nan_guard_stops_with_clear_error(tmp_path, tok_dir, small_text):
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.load(tok_dir)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=32))
    calls = []

    def bad_loss(m, batch):
        loss, metrics = cross_entropy_loss(m, batch)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), metrics

    before = None
    with pytest.raises(LlmlabError, match=r"step 3: training diverged"):
        before = None
        train(model, TrainConfig(max_steps=10, seq_len=32, batch_size=4), _batches(tok, small_text), bad_loss,
              tmp_path, progress=False)
    assert before is None and all(torch.isfinite(p).all() for p in model.parameters())


def test_pretrain_cli_end_to_end_and_eval_bpb(tmp_path, tok_dir, text_files, capsys):
    out = tmp_path / "run"
    rc = main(["pretrain", "--data", str(text_files / "train.txt"), "--val-data", str(text_files / "val.txt"),
               "--out", str(out), "--tokenizer", str(tok_dir), "--max-steps", "8", "--eval-every", "4", *TINY])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    for k in ("val_bpb", "val_loss", "tokens_per_sec", "params", "steps", "tokens", "seconds"):
        assert k in summary, k
    assert summary["steps"] == 8 and summary["tokens"] == 8 * 4 * 32
    assert (out / "tokenizer").is_dir() and (out / "samples.txt").is_file()
    recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "loss" in r] == list(range(1, 9))
    assert any("val_bpb" in r for r in recs if r["step"] == 4)
    capsys.readouterr()
    assert main(["eval", "bpb", "--model", str(out), "--text", str(text_files / "val.txt")]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bpb"] == pytest.approx(summary["val_bpb"], rel=1e-6)
    assert r["bytes"] == len((text_files / "val.txt").read_bytes())


def test_bad_inputs_give_one_line_errors(tmp_path, tok_dir, text_files, capsys):
    def err(argv):
        capsys.readouterr()
        assert main(argv) == 2
        msg = capsys.readouterr().err.strip().splitlines()[-1]
        assert msg.startswith("llmlab: error: ") and "\n" not in msg and "Traceback" not in msg
        return msg

    small = tmp_path / "small.txt"
    small.write_text("too short")
    base = ["--tokenizer", str(tok_dir), "--max-steps", "2", *TINY]
    assert "too little for one batch" in err(["pretrain", "--data", str(small), "--out", str(tmp_path / "a"), *base])
    assert "unknown model preset 'nope'" in err(["pretrain", "--data", str(small), "--out", str(tmp_path / "b"),
                                                 "--tokenizer", str(tok_dir), "--max-steps", "2", "--preset", "nope"])
    assert "disagrees with the tokenizer" in err(["pretrain", "--data", str(small), "--out", str(tmp_path / "c"),
                                                  "--vocab-size", "999", *base])
    assert "not found" in err(["pretrain", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "d"), *base])
    # resume without a checkpoint, then with a corrupt one
    run = tmp_path / "e"
    data = ["--data", str(text_files / "train.txt"), "--val-data", str(text_files / "val.txt"), "--out", str(run)]
    assert "no checkpoint to resume from" in err(["pretrain", *data, *base, "--resume"])
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"\x00garbage" * 10)
    assert "corrupt checkpoint" in err(["pretrain", *data, *base, "--resume"])
    # a checkpoint that exists but belongs to a differently shaped model
    assert main(["pretrain", *data[:-1], str(tmp_path / "f"), *base, "--save-every", "1"]) == 0
    (run / "checkpoints" / "last.pt").write_bytes((tmp_path / "f" / "checkpoints" / "last.pt").read_bytes())
    assert "does not match" in err(["pretrain", *data, "--tokenizer", str(tok_dir), "--max-steps", "4",
                                    "--preset", "depth-1", "--seq-len", "32", "--batch-size", "4", "--no-progress",
                                    "--resume"])
    # a tokenizer whose vocabulary is larger than the model's
    from llmlab.eval.bpb import bits_per_byte
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.load(tok_dir)
    with pytest.raises(LlmlabError, match="tokenizer has"):
        bits_per_byte(GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size - 1)), tok, "hello")


def test_prepared_data_folder_reads_only_its_shards(tmp_path):
    # `llmlab data prepare` writes report.md beside its shards; training must not read the report as text.
    from llmlab.data.ingest import iter_texts

    (tmp_path / "shard_00000.jsonl").write_text('{"text": "first document"}\n{"text": "second"}\n')
    (tmp_path / "report.md").write_text("# prepare report\n")
    (tmp_path / "report.json").write_text("{}")
    assert list(iter_texts(tmp_path)) == ["first document", "second"]


@pytest.mark.gpu
@pytest.mark.parametrize("compile_model", [False, True])
def test_cuda_bf16_training_loss_falls(tmp_path, tok_dir, small_text, compile_model):
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.load(tok_dir)
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=32))
    cfg = TrainConfig(lr=1e-2, max_steps=60, warmup_steps=5, seq_len=32, batch_size=8, save_every=0,
                      device="cuda", dtype="bf16", compile=compile_model)
    res = train(model, cfg, _batches(tok, small_text), cross_entropy_loss, tmp_path, tokenizer=tok, progress=False)
    losses = [r["loss"] for r in res.history]
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0, losses[::10]
    summary = json.loads((tmp_path / "summary.json").read_text())
    recs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert summary["tokens_per_sec"] > 0 and all(r["tokens_per_sec"] > 0 for r in recs if "loss" in r)
    assert all(0 < r["mfu"] < 1 for r in recs if "mfu" in r)  # MFU needs the GPU's peak (known ones only)


@pytest.mark.gpu
def test_pretrain_cli_on_cuda_then_eval_bpb_and_generate(tmp_path, tok_dir, text_files, capsys):
    out = tmp_path / "run"
    rc = main(["pretrain", "--data", str(text_files / "train.txt"), "--val-data", str(text_files / "val.txt"),
               "--out", str(out), "--tokenizer", str(tok_dir), "--max-steps", "8", "--eval-every", "4",
               "--device", "cuda", *TINY])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    capsys.readouterr()
    assert main(["eval", "bpb", "--model", str(out), "--text", str(text_files / "val.txt")]) == 0
    r = json.loads(capsys.readouterr().out)
    # Evaluated on the CPU here, trained (bf16 autocast, float32 weights) and evaluated on the GPU there.
    assert r["bpb"] == pytest.approx(summary["val_bpb"], rel=2e-2)


@pytest.mark.parametrize("native, dtype, want", [(True, "auto", "bf16"), (False, "auto", "auto"),
                                                 (True, "fp32", "fp32"), (True, "bf16", "bf16")])
def test_pretrain_and_sft_take_bf16_on_cpus_with_native_bf16(monkeypatch, native, dtype, want):
    import llmlab.train.loop as loop

    monkeypatch.setattr(loop, "fast_bf16_matmul", lambda device: native)
    cfg = loop.TrainConfig(device="cpu", dtype=dtype)
    assert loop.prefer_native_bf16(cfg).dtype == want
    assert loop.resolve_dtype(cfg.dtype, torch.device("cpu")) == torch.float32 or dtype == "bf16"  # loop's own rule
