"""The OpenAI-compatible server over the engine (continuous batching) and its web chat page.

    llmlab serve --model runs/speedrun/sft            # http://127.0.0.1:8000: the chat page; the API at /v1

``server.py`` (config, request -> job), ``engine_proc.py`` (the engine's own process and the pipe to it),
``scheduler.py`` (the thread there that owns the engine's step loop), ``app.py`` (HTTP routes, SSE), ``protocol.py`` (OpenAI request/error shapes), ``chat_format.py``
(messages and tools through the chat template, tool calls parsed back), ``grammar.py`` (JSON mode through
xgrammar), ``metrics.py`` (Prometheus text), ``static/`` (the page: plain HTML/JS/CSS, no build step).
"""
