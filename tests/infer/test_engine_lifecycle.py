"""The engine as a server runs it: many requests through one open generation (retired when they end, the
cache reused and bounded, outputs still equal to running each request alone), admission limits, tokens
forced into a live row, and constrained decoding between steps.

    .venv/bin/pytest tests/infer/test_engine_lifecycle.py -q
"""

import random

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.infer import Engine, SamplingParams
from llmlab.model.gpt import GPT, ModelConfig

V = 211


def tiny_model(seed: int = 0) -> GPT:
    """As tests/infer/test_engine.py's: float64, large weights, peaked distributions (no near-ties)."""
    torch.manual_seed(seed)
    m = GPT(ModelConfig.preset("tiny", vocab_size=V)).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3)
    return m


def naive_greedy(model, prompt, max_new):
    """The reference: re-run the whole sequence every step, take the argmax."""
    ids, out = list(prompt), []
    with torch.no_grad():
        for _ in range(max_new):
            tok = int(model(torch.tensor([ids]))[0, -1].argmax())
            out.append(tok)
            ids.append(tok)
    return out


@pytest.mark.slow
def test_requests_stream_through_one_generation_with_a_bounded_cache():
    """80 greedy requests joining at random steps (prompts up to 30 tokens, 40 new, context 64): each one's
    tokens equal the naive loop's, finished requests are retired, and the cache block stops growing."""
    m = tiny_model()
    eng = Engine(m)
    rng = random.Random(0)
    gen = eng.open(keep_finished=False)
    prompts, got, shapes = {}, {}, []
    submitted = 0
    while submitted < 80 or not gen.done:
        if submitted < 80 and (rng.random() < 0.6 or gen.done):
            p = [rng.randrange(1, V) for _ in range(rng.randint(1, 30))]
            params = SamplingParams(temperature=0, max_new_tokens=rng.randint(1, 40), ignore_eos=True)
            events = gen.add([p], params)
            prompts[submitted] = (p, params.max_new_tokens)
            submitted += 1
        else:
            events = gen.step()
        for e in events:
            got.setdefault(e.prompt_index, []).append(e.token_id)
        held = {o.prompt_index for o in gen.outputs()}
        assert held == {pi for pi, _ in gen.live}  # only live requests are held
        shapes.append(gen.kv_shape())
    assert len(got) == 80
    for i, (p, n) in prompts.items():
        assert got[i] == naive_greedy(m, p, min(n, 64 - len(p))), i
    rows, slots = zip(*shapes)
    assert max(slots) <= 64 + 1  # the window never grows past the context (+1 for the compiled step)
    assert len(set(shapes[len(shapes) // 2:])) <= 2  # after warm-up the block is reused, not regrown


def test_a_long_running_row_keeps_the_window_bounded():
    """One row runs the whole context while short requests come and go: every row's output is the naive
    one although their masked prefixes are cut again and again."""
    m = tiny_model()
    eng = Engine(m)
    long = SamplingParams(temperature=0, max_new_tokens=60, ignore_eos=True)
    short = SamplingParams(temperature=0, max_new_tokens=7, ignore_eos=True)
    gen = eng.start([[5, 6, 7]], long)
    extra = []
    for i in range(40):
        if i % 3 == 0:
            extra.append([10 + i, 11 + i])
            gen.add([extra[-1]], short)
        gen.step()
        assert gen.cache.length <= 64
    while not gen.done:
        gen.step()
    out = gen.outputs()
    assert out[0].samples[0].token_ids == naive_greedy(m, [5, 6, 7], 60)
    for o, p in zip(out[1:], extra):
        assert o.samples[0].token_ids == naive_greedy(m, p, 7)


def test_admission_limits():
    m = tiny_model()
    eng = Engine(m)
    params = SamplingParams(temperature=0, max_new_tokens=10)
    gen = eng.open(max_rows=3)
    assert gen.can_add([[1, 2]], params.replace(n=3)) and not gen.can_add([[1, 2]], params.replace(n=4))
    gen.add([[1, 2], [3]], params)
    with pytest.raises(LlmlabError, match="max_rows=3"):
        gen.add([[4], [5]], params)
    # KV slots: rows x (longest prompt + output); a request that could not finish within them waits.
    gen = eng.open(max_kv_slots=2 * 21)
    gen.add([[1] * 10], params.replace(max_new_tokens=11))  # needs 21 slots
    assert gen.can_add([[2] * 5], params) and not gen.can_add([[2] * 20], params)
    assert gen.kv_shape()[0] * gen.kv_shape()[1] <= 2 * 21
    while not gen.done:
        gen.step()
    assert gen.can_add([[2] * 20], params.replace(max_new_tokens=1)) and gen.can_add([[2] * 5], params.replace(n=2))


def test_forced_tokens_continue_as_if_they_were_in_the_prompt():
    """Forcing tokens into a live row (a tool's result) equals running prompt + output + forced tokens."""
    m = tiny_model()
    eng = Engine(m)
    greedy = SamplingParams(temperature=0, max_new_tokens=30, ignore_eos=True)
    other = [[9, 8, 7, 6], [3]]
    gen = eng.start([[1, 2, 3]] + other, greedy)
    for _ in range(4):
        gen.step()
    forced = [40, 41, 42, 43, 44]
    events = gen.force(0, 0, forced)
    assert [e.token_id for e in events[:5]] == forced and all(e.forced for e in events[:5])
    assert not events[5].forced
    while not gen.done:
        gen.step()
    out = gen.outputs()
    toks = out[0].samples[0].token_ids
    assert toks[5:10] == forced and len(toks) == 35  # forced tokens don't count toward max_new_tokens
    head = toks[:5]
    assert toks[10:] == naive_greedy(m, [1, 2, 3] + head + forced, 25)
    for o, p in zip(out[1:], other):  # the other rows are untouched
        assert o.samples[0].token_ids == naive_greedy(m, p, 30)
    # A forced run longer than the window moves the others' slots; tokens past the context end the row.
    gen = eng.start([[1, 2], [5] * 20], greedy)
    gen.step()
    ev = gen.force(0, 0, [7] * 25)
    assert not ev[-1].forced
    while not gen.done:
        gen.step()
    a, b = gen.outputs()
    assert a.samples[0].token_ids[2:27] == [7] * 25
    assert a.samples[0].token_ids[27:] == naive_greedy(m, [1, 2] + a.samples[0].token_ids[:27], 28)
    assert b.samples[0].token_ids == naive_greedy(m, [5] * 20, 30)
    gen = eng.start([[1] * 50], greedy)
    ev = gen.force(0, 0, list(range(20)))
    assert len(ev) == 13 and ev[-1].finish_reason == "length" and gen.done  # 50 + 1 + 13 = 64
    with pytest.raises(LlmlabError, match="not generating"):
        gen.force(0, 0, [1])


class OnlyEven:
    """A toy constraint: even token ids only, and done after 5 tokens."""

    def __init__(self):
        self.n = 0

    def allowed(self):
        a = torch.zeros(V, dtype=torch.bool)
        a[::2] = True
        return a

    def advance(self, tok):
        assert tok % 2 == 0
        self.n += 1

    def done(self):
        return self.n >= 5


def test_constraint_masks_every_draw_and_ends_the_row():
    m = tiny_model()
    eng = Engine(m)
    free = SamplingParams(temperature=1.0, seed=1, max_new_tokens=12, ignore_eos=True)
    out = eng.generate([[1, 2, 3], [4, 5]], [free.replace(constraint=OnlyEven, n=3), free])
    for s in out[0].samples:
        assert len(s.token_ids) == 5 and all(t % 2 == 0 for t in s.token_ids) and s.finish_reason == "stop"
    assert out[1].samples[0].token_ids == eng.generate([[4, 5]], free)[0].samples[0].token_ids
    # Greedy rows obey it too: the best even token, every step.
    g = eng.generate([[1, 2, 3]], SamplingParams(temperature=0, max_new_tokens=5, constraint=OnlyEven, logprobs=0))
    ids = [1, 2, 3]
    for tok in g[0].samples[0].token_ids:
        with torch.no_grad():
            logits = m(torch.tensor([ids]))[0, -1]
        assert tok == int(logits[::2].argmax()) * 2
        ids.append(tok)
