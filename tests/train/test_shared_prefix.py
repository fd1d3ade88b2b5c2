"""Answer log-probs computed with each distinct prompt run once equal those of whole rows, values and gradients.

    .venv/bin/pytest tests/train/test_shared_prefix.py -q
"""

import torch

from llmlab.model.gpt import GPT, ModelConfig
from llmlab.model.sequences import pad_sequences, response_token_logprobs
from llmlab.train.shared_prefix import shared_prompt_logprobs


def rows_sharing_prompts():
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(1, 97, (n,), generator=g).tolist() for n in (5, 9, 3)]
    seqs, starts = [], []
    for i in range(10):  # groups of rows per prompt, answers of 1..6 tokens, rows in mixed order
        p = prompts[(i * 7) % 3]
        seqs.append(p + torch.randint(1, 97, (1 + i % 6,), generator=g).tolist())
        starts.append(len(p))
    return pad_sequences(seqs, starts, pad_id=0)


def test_shared_prompt_logprobs_equal_whole_rows_with_gradients():
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=2)).double()
    ids, mask, _ = rows_sharing_prompts()
    m = mask[:, :-1].double()
    results = []
    for fn in (lambda model, ids, mask: response_token_logprobs(model, ids), shared_prompt_logprobs):
        model.zero_grad()
        logp = fn(model, ids, mask) * m
        (logp.sum() + (logp ** 2).sum()).backward()  # a loss that weighs tokens unevenly
        results.append((logp.detach(), [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = results
    assert torch.allclose(a, b, atol=1e-10, rtol=0)
    assert all(torch.allclose(x, y, atol=1e-9, rtol=0) for x, y in zip(ga, gb))
    assert (b != 0).sum() == m.sum()  # every answer token scored, nothing else


def test_rows_without_shared_prompts_take_the_plain_path():
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=97)).double().eval()
    ids, mask, _ = pad_sequences([[1, 2, 3, 4], [5, 6, 7]], [2, 1], pad_id=0)
    m = mask[:, :-1].double()
    with torch.no_grad():
        assert torch.allclose(shared_prompt_logprobs(model, ids, mask) * m, response_token_logprobs(model, ids) * m)
