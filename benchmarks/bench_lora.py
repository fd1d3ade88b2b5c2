"""LoRA training step: our adapters (train/lora.py) vs peft's on the same model, and full fine-tuning, in one run.

    .venv/bin/python benchmarks/bench_lora.py                         # the `cpu` preset, batch 16 x 256, rank 8
    .venv/bin/python benchmarks/bench_lora.py --preset gpt2-small --batch-size 4 --vocab-size 50304

Each variant runs the training loop's step (the model with the device's kernels, forward with the chunked head +
loss, backward, AdamW on what is trainable) in interleaved rounds; prints median step time, tokens/s and the
optimizer state (Adam's two moments) of each, and our LoRA's speed relative to peft's. peft's adapters are put
into the same model with ``peft.inject_adapter_in_model`` (rank, alpha, target layers and zero dropout as ours).
peft comes with the ``bench`` extra (``pip install -c constraints.txt -e '.[bench]'``); without it the peft row is
left out, saying so.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.model.kernels import convert
    from llmlab.train.lora import TARGETS, add_lora

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = GPT(ModelConfig.preset(args.preset, vocab_size=args.vocab_size, max_seq_len=args.seq_len))
    convert(base, "cpu")
    models = {"full": copy.deepcopy(base), "ours": copy.deepcopy(base)}
    add_lora(models["ours"], args.rank)
    try:
        from peft import LoraConfig, inject_adapter_in_model

        peft_model = copy.deepcopy(base)
        for p in peft_model.parameters():
            p.requires_grad_(False)
        inject_adapter_in_model(LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                                           target_modules=list(TARGETS)), peft_model)
        models["peft"] = peft_model
    except ImportError as e:
        print(f"skip peft: {e}")

    B, T = args.batch_size, args.seq_len
    x = torch.randint(0, args.vocab_size, (B, T))
    y = torch.roll(x, -1, 1)
    steps, opts = {}, {}
    for name, m in models.items():
        m.train()
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
        opts[name] = opt

        def step(m=m, opt=opt):
            loss = m(x, targets=y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        steps[name] = step
        for _ in range(2):  # warm-up: allocations, optimizer state
            step()
    times = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t0) / args.steps)
    res = {"shape": f"{args.preset} V{args.vocab_size}", "batch": f"{B}x{T}", "rank": args.rank,
           "threads": torch.get_num_threads(), "load": round(os.getloadavg()[0], 2)}
    for name in steps:
        med = statistics.median(times[name])
        state = sum(t.numel() * t.element_size() for st in opts[name].state.values() for t in st.values()
                    if torch.is_tensor(t) and t.dim() > 0)
        res[name] = {"ms_per_step": round(1000 * med, 1), "tokens_per_sec": round(B * T / med, 1),
                     "optimizer_state_mb": round(state / 2**20, 2)}
    if "peft" in res:
        res["ours_speed_vs_peft"] = round(res["ours"]["tokens_per_sec"] / res["peft"]["tokens_per_sec"], 3)
    res["ours_state_vs_full"] = round(res["ours"]["optimizer_state_mb"] / res["full"]["optimizer_state_mb"], 3)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
