"""The model: ``gpt.py`` (the Transformer, top to bottom) and ``checkpoint.py`` (run folders on disk)."""

from llmlab.model.gpt import GPT, KVCache, ModelConfig

__all__ = ["GPT", "KVCache", "ModelConfig"]
