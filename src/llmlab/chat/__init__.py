"""Chat: the template over the special tokens, conversation data (JSONL), the default SFT data generator
and the ``llmlab chat`` REPL.

    from llmlab.chat.template import render, render_prompt, CHAT_TEMPLATE
    llmlab chat --model runs/sft
"""
