"""Training throughput: tokens/s of llmlab's training step vs Hugging Face ``LlamaForCausalLM`` with the same
dimensions, batch, sequence length, dtype and optimizer, measured in one run (interleaved rounds, so load from
other processes hits both alike). Prints both and the ratio (target >= 1.3x on CPU). On a GPU also the MFU.

    .venv/bin/python benchmarks/bench_train_throughput.py                    # CPU, the `cpu` speedrun shape
    .venv/bin/python benchmarks/bench_train_throughput.py --preset gpt2-small --device cuda --dtype bf16 \\
        --batch-size 16 --seq-len 1024 --vocab-size 50304 --compile

Measured on one H100 (2026-11-23, the second command): ours 393k tok/s, 34.0% MFU; HF 361k, 31.2%; 1.09x.
``--ce plain`` swaps our chunked loss for whole logits + F.cross_entropy; ``--models ours`` skips HF.

"Our step" is exactly what the loop runs: the model with the device's kernels swapped in
(``model.kernels.convert``), forward with the chunked head + float32 cross-entropy, backward, gradient clipping,
AdamW.
The HF model gets the same step with its own loss (``labels=``), SDPA attention, tied embeddings like ours.
``--profile`` adds each model's time shares (matmul, attention, other; ``--top-ops N`` also lists the N
costliest operators) and 1 / (matmul + attention share): what removing every other operator could gain.
On a CPU the two models' matmuls are no longer the same kernels: ours run float32 products on oneDNN
(``model/kernels/onednn.py``; MKL's sgemm, which HF's ``torch.mm`` calls, takes its AVX2 path on AMD CPUs), and
under bf16 autocast our attention runs in float32 on CPUs without AMX (``kernels/cpu.py: float32_attention``). The loop's
``keep_freed_memory`` (glibc keeps freed blocks: +18-21% steps for pretraining alone) is process-wide and would
speed HF's step as well, so this benchmark leaves it off for both.

Measured on a 2-core AMD EPYC Zen 5 VM (AVX-512, AVX512-BF16, no AMX), 1 thread, other core busy, 2026-12-03
(docs/LOG.md, session 8), one interleaved run each: default shape fp32 1.61-1.77x (3 runs), bf16 1.37-1.43x
(3 runs); gpt2-small (``--preset gpt2-small --batch-size 4 --vocab-size 50304 --rounds 3 --steps 2``) fp32
1.66-2.04x, bf16 1.19-1.22x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F


def build_models(args):
    from transformers import LlamaConfig, LlamaForCausalLM

    from llmlab.model.gpt import GPT, ModelConfig

    overrides = {k: getattr(args, k) for k in ("n_layer", "d_model", "n_head", "n_kv_head") if getattr(args, k)}
    if "n_head" in overrides and "n_kv_head" not in overrides:
        overrides["n_kv_head"] = overrides["n_head"]
    cfg = ModelConfig.preset(args.preset, vocab_size=args.vocab_size, max_seq_len=args.seq_len, **overrides)
    torch.manual_seed(0)
    ours = GPT(cfg)
    hf_cfg = LlamaConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.ffn_hidden,
                         num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                         num_key_value_heads=cfg.n_kv_head, max_position_embeddings=cfg.max_seq_len,
                         rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta, tie_word_embeddings=cfg.tie_embeddings,
                         attention_bias=False, mlp_bias=False, use_cache=False)
    hf_cfg._attn_implementation = "sdpa"
    hf = LlamaForCausalLM(hf_cfg)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())
    return cfg, ours, hf


def make_step(model, kind: str, args, device):
    model.to(device).train()
    if kind == "ours":
        from llmlab.model.kernels import convert

        convert(model, device)  # as the training loop does
    fwd = torch.compile(model) if args.compile else model  # the optimizer keeps the original parameters
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=device.type in ("cuda", "cpu"))
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bf16" else None

    def step(x, y):
        import contextlib

        with amp or contextlib.nullcontext():
            if kind == "ours" and args.ce == "plain":  # whole logits, then the loss (what HF does)
                logits = fwd(x)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-1)
            elif kind == "ours":
                loss = fwd(x, targets=y)  # the loop's loss: head + cross-entropy chunk by chunk
            else:
                # HF shifts labels itself: give it the full window, inputs = labels.
                loss = fwd(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--n-layer", type=int)
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--n-head", type=int)
    ap.add_argument("--n-kv-head", type=int)
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of --steps steps per model")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--profile", action="store_true", help="also report each step's time shares (matmul, "
                    "attention, other) and the speed-up bound they imply")
    ap.add_argument("--top-ops", type=int, default=0, help="with --profile, also list each model's N costliest "
                    "operators (name, ms per step, share of the step's self CPU time)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile both models (as `llmlab pretrain --compile` does ours); the GPU MFU target "
                    "is meant with it. Compile time is spent in the warm-up, not measured")
    ap.add_argument("--ce", choices=["chunked", "plain"], default="chunked",
                    help="our loss: the model's chunked head + cross-entropy (what the loop runs), or the whole "
                    "logits tensor then F.cross_entropy (to measure what the chunking costs or saves)")
    ap.add_argument("--models", default="ours,hf", help="comma-separated subset of ours,hf to run")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg, ours, hf = build_models(args)
    models = {"ours": ours, "hf": hf}
    steps = {name: make_step(models[name], name, args, device) for name in args.models.split(",")}
    B, T = args.batch_size, args.seq_len
    x = torch.randint(0, cfg.vocab_size, (B, T), device=device)
    y = torch.roll(x, -1, dims=1)
    y[:, -1] = -1  # the last position has no next token (HF's shifted labels score the same T - 1 positions)
    for name in steps:  # warm-up (allocator, oneDNN/cuBLAS kernel choice)
        for _ in range(2):
            steps[name](x, y)
    # Wall-clock tokens/s is what a user gets; CPU-time tokens/s (process_time) is also reported because on a
    # shared machine it is far less sensitive to other processes' load.
    rates, cpu_rates = {k: [] for k in steps}, {k: [] for k in steps}
    for _ in range(args.rounds):
        for name in steps:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                steps[name](x, y)
            rates[name].append(args.steps * B * T / (time.perf_counter() - t0))
            cpu_rates[name].append(args.steps * B * T / (time.process_time() - c0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}
    res = {"device": str(device), "dtype": args.dtype, "compiled": args.compile, "ce": args.ce,
           "shape": f"L{cfg.n_layer} D{cfg.d_model} H{cfg.n_head}/{cfg.n_kv_head} V{cfg.vocab_size}",
           "batch": B, "seq_len": T, "threads": torch.get_num_threads(), "load": round(os.getloadavg()[0], 2)}
    for name in steps:
        res[f"{name}_tokens_per_sec"] = round(med[name], 1)
    for name in steps:
        res[f"{name}_cpu_time_tokens_per_sec"] = round(cpu_med[name], 1)
    if len(steps) == 2:
        res["ratio"] = round(med["ours"] / med["hf"], 3)
        res["cpu_time_ratio"] = round(cpu_med["ours"] / cpu_med["hf"], 3)
    if device.type == "cuda":
        from llmlab.train.loop import _PEAK_FLOPS

        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in _PEAK_FLOPS.items() if k in name), 0.0)
        fpt = ours.flops_per_token(T)
        res["gpu"] = name
        for name in steps:
            res[f"mfu_{name}"] = round(fpt * med[name] / peak, 4) if peak else None
        res["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if args.profile:
        res["time_shares"] = {name: op_shares(steps[name], x, y, top=args.top_ops) for name in steps}
    print(json.dumps(res))


# Operator classes: the matmuls (forward and backward, MKL or oneDNN) and the attention kernel. What is left
# ("other") is what removing elementwise work, copies and allocations could still win.
_KERNEL_CLASSES = {"matmul": ("aten::mm", "aten::addmm", "aten::bmm", "mkldnn::_linear_pointwise"),
                   "attention": ("scaled_dot_product",)}


def op_shares(step, x, y, n: int = 3, top: int = 0) -> dict:
    """Fraction of a step's self CPU time in matmuls, in attention, and in everything else (torch.profiler).
    1 / (matmul + attention) bounds the speed-up removing everything else could reach. With ``top`` also the
    ``top`` costliest operators: [name, ms per step, share]."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step(x, y)
    total, shares = 0.0, {k: 0.0 for k in _KERNEL_CLASSES}
    for ev in prof.key_averages():
        total += ev.self_cpu_time_total
        for cls, names in _KERNEL_CLASSES.items():
            if any(ev.key.startswith(k) or k in ev.key for k in names) and not ev.key.startswith("autograd"):
                shares[cls] += ev.self_cpu_time_total
    out = {k: round(v / total, 3) for k, v in shares.items()}
    out["other"] = round(1 - sum(out.values()), 3)
    out["max_speedup_same_kernels"] = round(1 / (out["matmul"] + out["attention"]), 2)
    if top:
        evs = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
        out["top_ops"] = [[e.key, round(e.self_cpu_time_total / n / 1e3, 2), round(e.self_cpu_time_total / total, 3)]
                          for e in evs]
    return out


if __name__ == "__main__":
    main()
