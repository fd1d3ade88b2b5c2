"""Benchmark: batch-1 greedy decode speed on CPU of the same weights in five runtimes.

    .venv/bin/python benchmarks/bench_export_decode.py                    # random "cpu"-preset model, 128 tokens
    .venv/bin/python benchmarks/bench_export_decode.py --preset gpt2-small --tokens 64
    .venv/bin/python benchmarks/bench_export_decode.py --model runs/sft    # a trained run instead

One run folder (a random model of ``--preset`` with a tokenizer trained on the bundled corpus, or ``--model``)
is exported once to HF, GGUF f32, GGUF q8_0 and model.bin; then each runtime decodes greedily from the same
prompt, ignoring end tokens so every one produces exactly ``--tokens`` tokens:

- ours: ``llmlab.infer.Engine`` (PyTorch, KV cache), eager (the fused forward) and with ``compile=True`` (the
  decode step compiled ahead of time by AOTInductor, ``infer/compiled.py``; ``--no-compile`` skips it);
- HF: ``transformers`` ``generate`` on the exported folder;
- llama.cpp f32 (with an f32 KV cache) and q8_0 (default f16 KV cache) via ``llama-cpp-python``;
- run.py: ``llmlab/standalone/run.py`` (numpy), imported and driven in-process.

Decode tokens/s = (N - 1) / (time for N tokens - time for 1 token): the prompt's prefill and the first token
cancel out. Best of ``--repeat``. All use ``--threads`` threads. The f32 runtimes must agree on the tokens
(printed). The goal: ours within 1.5x of llama.cpp f32.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

COMPILED = "llmlab engine, compiled step"


def make_run(path: Path, preset: str, vocab: int) -> None:
    import torch

    from llmlab.data.corpus import standard_split
    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.runs import save_run_model
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.train(standard_split()[0][:1_000_000], vocab_size=vocab)
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset(preset, vocab_size=tok.vocab_size, init_std=0.1)).eval()
    save_run_model(path, model, tok)


def timed(fn, n: int, repeat: int) -> tuple[float, list[int]]:
    """Decode tokens/s from fn(k) -> ids (k new tokens), best of ``repeat``; also the n-token output."""
    fn(2)  # warm-up: allocations, thread pools, lazy imports
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(1)
        t1 = time.perf_counter()
        out = fn(n)
        t2 = time.perf_counter()
        best = max(best, (n - 1) / max((t2 - t1) - (t1 - t0), 1e-9))
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a run folder (default: a random model of --preset)")
    ap.add_argument("--preset", default="cpu", help="model preset for the random model (default cpu)")
    ap.add_argument("--vocab", type=int, default=4096, help="tokenizer size for the random model")
    ap.add_argument("--tokens", type=int, default=128, help="new tokens per timed run")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per runtime (best is reported)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every runtime")
    ap.add_argument("--prompt", default="To be, or not to be, that is the question:")
    ap.add_argument("--no-compile", action="store_true", help="skip our engine's compiled decode step")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))

    import torch

    from llmlab.export.binfile import export_bin
    from llmlab.export.gguf import export_gguf
    from llmlab.export.hf import export_hf
    from llmlab.infer import Engine, SamplingParams
    from llmlab.runs import load_run

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_export_"))
    run = Path(args.model) if args.model else tmp / "run"
    if not args.model:
        make_run(run, args.preset, args.vocab)
    model, tok = load_run(run)
    c = model.config
    n = min(args.tokens, c.max_seq_len - 64)
    prompt = [tok.bos_id] + tok.encode(args.prompt)
    export_hf(run, tmp / "hf")
    export_gguf(run, tmp / "f32.gguf", "f32")
    export_gguf(run, tmp / "q8_0.gguf", "q8_0")
    export_bin(run, tmp / "model.bin")
    print(f"model: {model.num_params() / 1e6:.1f}M params, {c.n_layer} layers, d_model {c.d_model}, "
          f"vocab {c.vocab_size}; prompt {len(prompt)} tokens, {n} new tokens, {args.threads} threads")

    results: dict[str, tuple[float, list[int]]] = {}

    engine = Engine(model)

    def ours(k):
        out = engine.generate([prompt], SamplingParams(temperature=0, max_new_tokens=k, ignore_eos=True))
        return out[0].samples[0].token_ids

    results["llmlab engine (torch)"] = timed(ours, n, args.repeat)
    if not args.no_compile:
        t0 = time.perf_counter()
        engine = Engine(model, compile=True)  # the compiled decode step (first time: a C++ build, then cached)
        ours(2)
        print(f"compiled decode step ready in {time.perf_counter() - t0:.1f} s (includes the build on first use)")
        results[COMPILED] = timed(ours, n, args.repeat)

    try:
        from transformers import AutoModelForCausalLM

        hf = AutoModelForCausalLM.from_pretrained(str(tmp / "hf"), dtype=torch.float32).eval()
        hf.generation_config.eos_token_id = None  # like ignore_eos: never stop (or be steered) by end tokens
        x = torch.tensor([prompt])

        def hf_gen(k):
            with torch.inference_mode():
                y = hf.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=k,
                                pad_token_id=tok.pad_id)
            return y[0, len(prompt):].tolist()

        results["HF transformers generate"] = timed(hf_gen, n, args.repeat)
    except ImportError as e:
        print(f"skip HF: {e}")

    try:
        import llama_cpp

        for dtype in ("f32", "q8_0"):
            # f32 with an f32 KV cache (llama.cpp's default cache is f16), so it computes what we compute;
            # q8_0 as llama.cpp users run it, with the default f16 cache.
            kv = dict(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32) if dtype == "f32" else {}
            llm = llama_cpp.Llama(model_path=str(tmp / f"{dtype}.gguf"), n_ctx=c.max_seq_len, n_threads=args.threads,
                                  n_threads_batch=args.threads, n_batch=64, verbose=False, **kv)

            def cpp(k, llm=llm):
                llm.reset()
                out = []
                for t in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
                    out.append(t)
                    if len(out) == k:
                        break
                return out

            results[f"llama.cpp {dtype}"] = timed(cpp, n, args.repeat)
    except ImportError as e:
        print(f"skip llama.cpp: {e}")

    spec = importlib.util.spec_from_file_location("run_py", Path(__file__).parents[1] / "src/llmlab/standalone/run.py")
    run_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_py)
    header, weights = run_py.load(tmp / "model.bin")
    np_model = run_py.Model(header["config"], weights)
    results["run.py (numpy)"] = timed(lambda k: list(run_py.generate(np_model, prompt, k, temperature=0.0)), n,
                                      args.repeat)

    ref = results.get("llama.cpp f32", (None,))[0]
    print("\n| runtime | decode tok/s | ms/token | vs llama.cpp f32 | same tokens as ours |")
    print("|---|---:|---:|---:|---|")
    base = results["llmlab engine (torch)"][1]
    for name, (tps, toks) in results.items():
        rel = f"{tps / ref:.2f}x" if ref else "-"
        same = "yes" if toks == base else ("(lossy)" if "q8_0" in name else "NO")
        print(f"| {name} | {tps:.1f} | {1000 / tps:.2f} | {rel} | {same} |")
    if ref:
        for name in ("llmlab engine (torch)", COMPILED):
            if name in results:
                print(f"\n{name} takes {ref / results[name][0]:.2f}x llama.cpp f32's time per token (goal: <= 1.5x)")


if __name__ == "__main__":
    main()
