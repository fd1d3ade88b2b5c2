"""Training-step memory: llmlab's GPT (loss through the chunked head, model/fused_ce.py) vs Hugging Face
``LlamaForCausalLM`` (full logits, then cross-entropy) with the same dimensions, batch and sequence length.

    .venv/bin/python benchmarks/bench_train_memory.py                      # GPT-2 vocabulary, 2 layers, CPU
    .venv/bin/python benchmarks/bench_train_memory.py --device cuda --n-layer 12 --batch-size 16

Each model runs one forward + backward in its own process (so one's allocations can't hide the other's). On
CPU the figure is the growth of the process's peak resident memory during the step (``ru_maxrss``: weights,
optimizer-free); on CUDA ``torch.cuda.max_memory_allocated`` over the step. The difference is mostly the
(tokens x vocab) logits, their float copy and their gradient, which the chunked loss never holds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def one_step(kind: str, args) -> dict:
    import resource

    import torch

    from llmlab.model.gpt import GPT, ModelConfig

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = ModelConfig(vocab_size=args.vocab_size, n_layer=args.n_layer, n_head=args.d_model // 64,
                      n_kv_head=args.d_model // 64, d_model=args.d_model, max_seq_len=args.seq_len)
    dev = torch.device(args.device)
    if kind == "ours":
        model = GPT(cfg)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.ffn_hidden,
            num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_kv_head,
            max_position_embeddings=cfg.max_seq_len, tie_word_embeddings=True, use_cache=False,
            attn_implementation="sdpa"))
    model.to(dev).train()
    x = torch.randint(0, cfg.vocab_size, (args.batch_size, args.seq_len), device=dev)
    y = torch.roll(x, -1, dims=1)
    y[:, -1] = -1
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    loss = model(x, targets=y) if kind == "ours" else model(input_ids=x, labels=x).loss
    loss.backward()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    params = sum(p.numel() for p in model.parameters())
    return {"model": kind, "step_peak_mb": round(peak / 2**20, 1), "loss": round(loss.item(), 4), "params": params}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab-size", type=int, default=50304)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", choices=["ours", "hf"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(one_step(args.worker, args)))
        return
    res = {}
    for kind in ("ours", "hf"):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--worker", kind], check=True,
                             capture_output=True, text=True).stdout
        res[kind] = json.loads(out.strip().splitlines()[-1])
    assert res["ours"]["params"] == res["hf"]["params"], res
    print(json.dumps({"shape": f"L{args.n_layer} D{args.d_model} V{args.vocab_size}", "batch": args.batch_size,
                      "seq_len": args.seq_len, "device": args.device,
                      "ours_step_peak_mb": res["ours"]["step_peak_mb"], "hf_step_peak_mb": res["hf"]["step_peak_mb"],
                      "ratio_hf_over_ours": round(res["hf"]["step_peak_mb"] / max(res["ours"]["step_peak_mb"], 1e-9), 2),
                      "loss_ours": res["ours"]["loss"], "loss_hf": res["hf"]["loss"]}))


if __name__ == "__main__":
    main()
