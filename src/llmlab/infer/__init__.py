"""Inference: the engine (token ids in, token ids out), decoding strategies, and the text edge.

    from llmlab.infer import Engine, SamplingParams
    out = Engine(model, eos_token_ids=[tok.end_id]).generate([ids], SamplingParams(temperature=0))

    llmlab generate --model RUN --prompt "To be" --temperature 0.8 --top-p 0.95 --stream
    llmlab next --model RUN --prompt "The cat sat on a" --top 10

See ``engine.py`` (batched generation, KV cache, streaming events), ``sampling.py`` (every decoding strategy),
``text.py`` (UTF-8-safe streaming text and stop strings) and ``explain.py`` (next-token probabilities).
"""

# Imported lazily (PEP 562) so that `llmlab.infer.cli`, which `llmlab --help` imports, does not pull in torch.
_EXPORTS = {
    "Engine": "llmlab.infer.engine", "Generation": "llmlab.infer.engine", "GenerationStats": "llmlab.infer.engine",
    "RequestOutput": "llmlab.infer.engine", "Sample": "llmlab.infer.engine", "TokenEvent": "llmlab.infer.engine",
    "SamplingParams": "llmlab.infer.sampling",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llmlab.infer' has no attribute {name!r}")
