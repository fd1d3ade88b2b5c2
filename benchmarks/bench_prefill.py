"""Benchmark: prefill speed of a long prompt, ours vs llama.cpp (and HF's forward), on the same weights, in one run.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_prefill.py                        # 2048 tokens, 1 and 2 threads
    PYTHONPATH=src .venv/bin/python benchmarks/bench_prefill.py --prompt-tokens 512 --threads 1 --repeat 3

The model is ``bench_import_decode``'s random SmolLM2-135M-shaped one (30 layers, d 576, 9/3 heads, FFN 1536,
vocabulary 49152, tied; 134.5M parameters), its context raised to fit the prompt, written as an HF folder,
imported (``llmlab import hf``) and exported as an f32 GGUF. Each runtime reads the same ``--prompt-tokens``
random token ids and produces the next token's logits:

- ours: ``Engine.generate`` with ``max_new_tokens=1`` (the whole prompt in one forward through the fused
  weights, oneDNN's packed matmuls at this many rows, then the first token from the last row's logits);
- llama.cpp (llama-cpp-python) on the f32 GGUF with an f32 KV cache: ``Llama.eval`` of the prompt, its default
  batch of 512 tokens a call;
- HF ``transformers``: ``LlamaForCausalLM`` forward with ``logits_to_keep=1`` under ``inference_mode``.

Prefill tokens/s = prompt tokens / wall seconds, best of ``--repeat`` interleaved rounds (the machine is shared;
the load average is printed). The first greedy token of each runtime is printed: the f32 runtimes should agree.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench_import_decode import SHAPE, build_hf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompt-tokens", type=int, default=2048)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved rounds (best is reported)")
    ap.add_argument("--skip-hf", action="store_true", help="skip HF transformers")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(max(args.threads)))

    import numpy as np
    import torch

    from llmlab.export.gguf import export_gguf
    from llmlab.export.hf import import_hf
    from llmlab.infer import Engine, SamplingParams
    from llmlab.runs import load_model

    n = args.prompt_tokens
    SHAPE["max_position_embeddings"] = max(SHAPE["max_position_embeddings"], n + 16)  # (build_hf reads it)
    tmp = Path(tempfile.mkdtemp(prefix="bench_prefill_"))
    hf = build_hf(tmp / "hf")
    import_hf(tmp / "hf", tmp / "run")
    export_gguf(tmp / "run", tmp / "f32.gguf", "f32")
    model = load_model(tmp / "run")
    engine = Engine(model)
    prompt = torch.randint(3, SHAPE["vocab_size"], (n,), generator=torch.Generator().manual_seed(1)).tolist()
    x = torch.tensor([prompt])
    print(f"{sum(p.numel() for p in hf.parameters()) / 1e6:.1f}M params, {n}-token prompt, threads {args.threads}")

    def ours():
        out = engine.generate([prompt], SamplingParams(temperature=0, max_new_tokens=1, ignore_eos=True))
        return out[0].samples[0].token_ids[0]

    def hf_forward():
        with torch.inference_mode():
            return int(hf(x, logits_to_keep=1).logits[0, -1].argmax())

    llamas = {}
    try:
        import llama_cpp

        for t in args.threads:
            llamas[t] = llama_cpp.Llama(model_path=str(tmp / "f32.gguf"), n_ctx=n + 16, n_threads=t,
                                        n_threads_batch=t, type_k=llama_cpp.GGML_TYPE_F32,
                                        type_v=llama_cpp.GGML_TYPE_F32, verbose=False)
    except ImportError as e:
        print(f"skip llama.cpp: {e}")

    def cpp(t):
        def run():
            llm = llamas[t]
            llm.reset()
            llm.eval(prompt)  # keeps no logits of its own (llama-cpp-python 0.3): read the context's last row
            return int(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).argmax())
        return run

    runtimes = {"llmlab engine": ours}
    if llamas:
        runtimes["llama.cpp f32"] = None
    if not args.skip_hf:
        runtimes["HF forward"] = hf_forward
    best: dict[tuple[str, int], float] = {}
    first: dict[tuple[str, int], int] = {}
    for r in range(args.repeat + 1):  # round 0 warms up (thread pools, packed weights, allocations)
        for t in args.threads:
            torch.set_num_threads(t)
            for name, fn in runtimes.items():
                fn = fn or cpp(t)
                t0 = time.perf_counter()
                tok = fn()
                dt = time.perf_counter() - t0
                if r:
                    best[name, t] = min(best.get((name, t), float("inf")), dt)
                    first[name, t] = tok

    print(f"\nprefill of a {n}-token prompt (random SmolLM2-135M-shaped model, f32)")
    print("| runtime | threads | seconds | prefill tok/s | vs llama.cpp f32 | first token |")
    print("|---|---:|---:|---:|---:|---:|")
    for (name, t), s in best.items():
        peer = best.get(("llama.cpp f32", t))
        rel = f"{peer / s:.2f}x" if peer else "-"
        print(f"| {name} | {t} | {s:.2f} | {n / s:.0f} | {rel} | {first[name, t]} |")
    load = os.getloadavg()
    print(f"\nload average: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min) on {os.cpu_count()} cores; files in {tmp}")


if __name__ == "__main__":
    main()
