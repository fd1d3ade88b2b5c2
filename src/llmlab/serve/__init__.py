"""The OpenAI-compatible server over the engine (continuous batching) and its web chat page."""
