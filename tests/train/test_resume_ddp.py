"""Exact resume after SIGKILL, and DDP (2 gloo processes under torchrun) == 1 process with 2x grad accumulation.

    .venv/bin/pytest tests/train/test_resume_ddp.py -q
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("resume_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _args(text_files, tok_dir, out, *extra):
    return ["pretrain", "--data", str(text_files / "train.txt"), "--val-data", str(text_files / "val.txt"),
            "--out", str(out), "--tokenizer", str(tok_dir), "--preset", "tiny", "--seq-len", "32",
            "--batch-size", "4", "--no-progress", "--samples", "0", "--threads", "1",
            "--device", "cpu", "--dtype", "fp32", *extra]  # CPU determinism and gloo, also on a machine with a GPU;
    # float32 also where "auto" would pick bf16 (a CPU with native bf16): DDP's and accumulation's float32 sums
    # differ in the last bits, and bf16 rounding of the weights would amplify that past the tolerances below


def _losses(run):
    return [r["loss"] for r in map(json.loads, (Path(run) / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_exact(tmp_path, text_files, tok_dir):
    common = ["--max-steps", "12", "--save-every", "5", "--deterministic", "--lr", "3e-3", "--optimizer", "muon"]
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    subprocess.run([sys.executable, str(WORKER), *_args(text_files, tok_dir, ref, *common)], env=ENV, check=True,
                   capture_output=True)
    # Killed in step 8's forward pass: the checkpoint of step 5 exists, steps 6-7 are lost work.
    p = subprocess.run([sys.executable, str(WORKER), *_args(text_files, tok_dir, cut, *common), "--kill-at", "8"],
                       env=ENV, capture_output=True)
    assert p.returncode == -signal.SIGKILL
    ckpt = torch.load(cut / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 5 and not (cut / "model.safetensors").exists()
    subprocess.run([sys.executable, str(WORKER), *_args(text_files, tok_dir, cut, *common, "--resume")], env=ENV,
                   check=True, capture_output=True)
    a, b = load_file(ref / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _losses(ref) == _losses(cut)  # metrics.jsonl of the resumed run has no duplicated steps either


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_with_grad_accum(tmp_path, text_files, tok_dir):
    common = ["--max-steps", "6", "--lr", "3e-3", "--warmup-steps", "2", "--optimizer", "adamw"]
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "llmlab", *_args(text_files, tok_dir, one, *common, "--grad-accum", "2")],
                   env=ENV, check=True, capture_output=True)
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "llmlab", *_args(text_files, tok_dir, two, *common)], env=ENV, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    l1, l2 = _losses(one), _losses(two)
    assert len(l1) == len(l2) == 6
    for x, y in zip(l1, l2):
        assert abs(x - y) < 1e-4 * abs(x), (l1, l2)
    assert l1[0] != l1[-1]
    s1, s2 = (json.loads((r / "summary.json").read_text()) for r in (one, two))
    assert s2["world_size"] == 2 and s1["tokens"] == s2["tokens"]
    assert s2["val_bpb"] == pytest.approx(s1["val_bpb"], rel=1e-4)
    # FSDP2 (fully_shard) on gloo: the same curve again, and a full (unsharded) model.safetensors at the end.
    fsdp = tmp_path / "fsdp"
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "llmlab", *_args(text_files, tok_dir, fsdp, *common, "--fsdp", "--save-every", "3")],
                       env=ENV, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    for x, y in zip(l1, _losses(fsdp)):
        assert abs(x - y) < 1e-4 * abs(x)
    w1, w3 = load_file(one / "model.safetensors"), load_file(fsdp / "model.safetensors")
    assert w1.keys() == w3.keys() and all(torch.allclose(w1[k], w3[k], atol=1e-5) for k in w1)


@pytest.mark.slow
def test_sigterm_checkpoints_then_resume_finishes(tmp_path, text_files, tok_dir):
    import time

    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "llmlab", *_args(text_files, tok_dir, run, "--max-steps", "100000")],
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "SIGTERM received" in err and "continue with --resume" in err
    step = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert step >= 3
    subprocess.run([sys.executable, "-m", "llmlab", *_args(text_files, tok_dir, run, "--max-steps", str(step + 2),
                                                           "--resume")], env=ENV, check=True, capture_output=True)
    assert json.loads((run / "summary.json").read_text())["steps"] == step + 2
