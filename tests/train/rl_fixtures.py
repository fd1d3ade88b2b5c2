"""Shared helpers for the RL tests: a tiny tokenizer trained in the test, a tiny run folder, toy data."""

import json

import torch

from llmlab.model.gpt import GPT, ModelConfig
from llmlab.runs import save_run_model
from llmlab.tokenizer import Tokenizer

TEXT = ("What is 12 plus 7? 19. What is 3 plus 4? 7. Who says 'To be, or not to be'? Hamlet, in Hamlet. "
        "I cannot help with that. Good answer. Bad answer. ") * 10


def make_run(path, seed=0, max_seq_len=64):
    """A tiny untrained model + tokenizer saved as a run folder."""
    tok = Tokenizer.train(TEXT, vocab_size=256 + 16 + 40)
    torch.manual_seed(seed)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=max_seq_len))
    save_run_model(path, model, tok)
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def toy_pairs(n=16):
    """A consistent preference: the chosen answer says 'Good answer.', the rejected 'Bad answer.'."""
    return [{"prompt": f"What is {i} plus {i}?", "chosen": f"{2 * i}. Good answer.", "rejected": f"{2 * i}. Bad answer."}
            for i in range(n)]
