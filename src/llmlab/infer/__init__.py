"""Inference: the engine (token ids in, token ids out), decoding strategies, and the text edge.

    from llmlab.infer import Engine, SamplingParams
    out = Engine(model, eos_token_ids=[tok.end_id]).generate([ids], SamplingParams(temperature=0))

    llmlab generate --model RUN --prompt "To be" --temperature 0.8 --top-p 0.95 --stream
    llmlab next --model RUN --prompt "The cat sat on a" --top 10

See ``engine.py`` (batched generation, KV cache, streaming events), ``sampling.py`` (every decoding strategy),
``text.py`` (UTF-8-safe streaming text and stop strings) and ``explain.py`` (next-token probabilities).
"""

from llmlab.infer.engine import Engine, Generation, GenerationStats, RequestOutput, Sample, TokenEvent
from llmlab.infer.sampling import SamplingParams

__all__ = ["Engine", "Generation", "GenerationStats", "RequestOutput", "Sample", "SamplingParams", "TokenEvent"]
