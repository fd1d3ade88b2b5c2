"""``llmlab serve``: an OpenAI-compatible server with continuous batching, and a chat page at ``/``.

    llmlab serve --model runs/speedrun/sft                          # http://127.0.0.1:8000
    llmlab serve --model runs/speedrun/sft --port 8080 --api-key sk-local --max-batch 64
    llmlab serve --model runs/speedrun/sft --assistants-home ~/.llmlab    # + models assistant:NAME
    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model": "sft", "messages": [{"role": "user", "content": "Who are you?"}]}'

Wiring only: flags -> ``ServeConfig`` -> ``llmlab.serve.server.serve``.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a run over an OpenAI-compatible HTTP API, with a web chat page",
                       description="OpenAI-compatible server (chat and text completions, streaming, JSON mode, "
                       "tool calls) with continuous batching, and a chat page at /.")
    p.add_argument("--model", required=True, metavar="RUN", help="run folder (model.safetensors + tokenizer/)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on every route but /health and the page")
    p.add_argument("--max-batch", type=int, default=32, metavar="N", help="samples decoded at once (default 32)")
    p.add_argument("--max-queue", type=int, default=256, metavar="N",
                   help="requests waiting beyond the batch; more are answered 429 (default 256)")
    p.add_argument("--kv-cache-mb", type=float, default=0.0, metavar="MB",
                   help="bound on the KV cache; requests wait until they fit (default: batch x context)")
    p.add_argument("--max-body-mb", type=float, default=4.0, metavar="MB",
                   help="larger request bodies are answered 413 (default 4)")
    p.add_argument("--model-name", default="", help="the model id clients use (default: the run folder's name)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="AOT-compiled decode steps (first use compiles, ~30 s)")
    p.add_argument("--guard", choices=["off", "block"], default="off",
                   help="the safety guard on every chat request (llmlab.safety): block answers a harmful or injected "
                   "request with a refusal, finish_reason content_filter")
    p.add_argument("--quantize", choices=["int8", "int8-dynamic"], default=None,
                   help="int8 linear layers (model/kernels/int8.py): 'int8' weight-only, 'int8-dynamic' 8-bit "
                   "activations too (fbgemm, x86; a row's numbers then depend on its batch)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                   help="weights and KV cache: fp32 (as stored, the default) or bf16 (half the memory; several times "
                   "the batched throughput where the CPU has AMX or AVX512-BF16, and on GPUs)")
    p.add_argument("--kv-dtype", choices=["auto", "fp32", "bf16"], default="auto",
                   help="the KV cache alone (default auto: as --dtype): bf16 under fp32 weights halves the bytes a "
                   "batched decode step's attention reads and the cache's memory (llama.cpp keeps an f16 cache by "
                   "default); not with --compile")
    p.add_argument("--assistants-home", default=None, metavar="DIR",
                   help="serve the assistants saved under DIR/assistants (llmlab assistant create) as models "
                   "'assistant:NAME' (default: $LLMLAB_HOME, else ~/.llmlab); those made for another run are left out")
    p.set_defaults(func=_serve)


def _serve(args) -> int:
    from llmlab.utils.openmp import passive_wait

    passive_wait()  # before torch loads OpenMP, here and in the engine process it spawns (utils/openmp.py)
    from llmlab.serve.server import ServeConfig, serve

    cfg = ServeConfig(model=args.model, host=args.host, port=args.port, api_key=args.api_key,
                      max_batch=args.max_batch, max_queue=args.max_queue, kv_cache_mb=args.kv_cache_mb,
                      max_body_mb=args.max_body_mb, model_name=args.model_name, device=args.device,
                      threads=args.threads, compile=args.compile, quantize=args.quantize,
                      dtype=args.dtype, kv_dtype=args.kv_dtype, assistants_home=args.assistants_home)
    filt = None
    if args.guard != "off":
        from llmlab.safety.filters import content_filter

        filt = content_filter(args.guard)
    serve(cfg, content_filter=filt)
    return 0
