"""The engine: greedy == naive full-recompute loop, batched rows of different lengths, n samples, seeds,
logprobs, stopping, context policy, streaming events.

    .venv/bin/pytest tests/infer/test_engine.py -q
"""

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.infer import Engine, SamplingParams
from llmlab.model.gpt import GPT, ModelConfig

V = 211


def tiny_model(seed: int = 0, **kw) -> GPT:
    """A random 2-layer model in float64 with large weights, so its next-token distributions are peaked and
    batched-vs-single rounding differences (~1e-15) can't flip an argmax."""
    torch.manual_seed(seed)
    m = GPT(ModelConfig.preset("tiny", vocab_size=V, **kw)).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3)
    return m


def naive_greedy(model, prompt, max_new, stops=()):
    """The reference: re-run the whole sequence every step, take the argmax."""
    ids, out = list(prompt), []
    with torch.no_grad():
        for _ in range(max_new):
            if len(ids) > model.config.max_seq_len:
                break
            tok = int(model(torch.tensor([ids]))[0, -1].argmax())
            out.append(tok)
            ids.append(tok)
            if tok in stops:
                break
    return out


PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [3] * 12, [100]]


def test_greedy_equals_naive_loop_batched_different_lengths():
    m = tiny_model()
    eng = Engine(m)
    out = eng.generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=25))
    for o, p in zip(out, PROMPTS):
        assert o.samples[0].token_ids == naive_greedy(m, p, 25)
        assert o.samples[0].finish_reason == "length"
    # Each row alone gives the same tokens as in the padded batch (cache rows don't leak into each other).
    for o, p in zip(out, PROMPTS):
        assert eng.generate([p], SamplingParams(temperature=0, max_new_tokens=25))[0].samples[0].token_ids == o.samples[0].token_ids


def test_prefill_in_length_groups_gives_what_one_padded_pass_gives(monkeypatch):
    from llmlab.infer import engine as engine_mod
    from llmlab.infer.engine import prefill_groups

    # the split: sorted by length, each group padded to its longest; close lengths stay one group
    assert prefill_groups([30, 5, 31, 6], call_tokens=0) == [[1], [3], [0], [2]]
    assert prefill_groups([30, 5, 31, 6], call_tokens=10) == [[1, 3], [0, 2]]
    assert prefill_groups([30, 5, 31, 6], call_tokens=100) == [[1, 3, 0, 2]]
    m = tiny_model()
    prompts = PROMPTS + [list(range(2, 40)), list(range(50, 90))]
    params = SamplingParams(temperature=0, max_new_tokens=12, logprobs=2)
    outs = {}
    for call in (10**6, 8, 0):  # one pass; a few groups; one group per length
        monkeypatch.setattr(engine_mod, "PREFILL_CALL_TOKENS", call)
        outs[call] = Engine(m).generate(prompts, params)
    for o, p in zip(outs[0], prompts):
        assert o.samples[0].token_ids == naive_greedy(m, p, 12)
    for call in (8, 0):
        for a, b in zip(outs[call], outs[10**6]):
            assert a.samples[0].token_ids == b.samples[0].token_ids
            assert a.samples[0].logprobs == pytest.approx(b.samples[0].logprobs, abs=1e-12)


def test_greedy_equals_naive_with_gqa_and_float32():
    torch.manual_seed(1)
    m = GPT(ModelConfig.preset("tiny", vocab_size=V)).eval()  # float32, n_kv_head=2 < n_head=4
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3)
    out = Engine(m).generate(PROMPTS[:2], SamplingParams(temperature=0, max_new_tokens=15))
    for o, p in zip(out, PROMPTS[:2]):
        assert o.samples[0].token_ids == naive_greedy(m, p, 15)


def test_rows_stop_at_different_points_and_are_dropped():
    m = tiny_model()
    ref = [naive_greedy(m, p, 30) for p in PROMPTS]
    # Pick a stop id that one row produces early; the other rows must continue unaffected.
    stop = ref[0][3]
    eng = Engine(m, eos_token_ids=[stop])
    gen = eng.start(PROMPTS, SamplingParams(temperature=0, max_new_tokens=30))
    batch_sizes = [gen.cache.batch_size]
    while not gen.done:
        gen.step()
        batch_sizes.append(gen.cache.batch_size)
    for o, p in zip(gen.outputs(), PROMPTS):
        want = naive_greedy(m, p, 30, stops=(stop,))
        assert o.samples[0].token_ids == want
        assert o.samples[0].finish_reason == ("stop" if want[-1] == stop else "length")
    assert gen.outputs()[0].samples[0].token_ids[-1] == stop  # the stop id is kept in the ids
    assert batch_sizes[0] == 4 and min(batch_sizes) < 4  # finished rows left the batch
    # ignore_eos: the eos id no longer stops; stop_token_ids still do.
    o = eng.generate([PROMPTS[0]], SamplingParams(temperature=0, max_new_tokens=30, ignore_eos=True))[0]
    assert len(o.samples[0].token_ids) == 30
    o = eng.generate([PROMPTS[0]], SamplingParams(temperature=0, max_new_tokens=30, ignore_eos=True,
                                                  stop_token_ids=(ref[0][1],)))[0]
    assert o.samples[0].token_ids == ref[0][:2] and o.samples[0].finish_reason == "stop"


def test_n_samples_share_one_prefill_and_seed_reproduces():
    m = tiny_model()
    eng = Engine(m)
    params = SamplingParams(temperature=1.0, n=5, seed=123, max_new_tokens=12)
    gen = eng.start([PROMPTS[0], PROMPTS[1]], params)
    assert gen.cache.batch_size == 10  # 2 prompts prefilled, then each row repeated 5 times
    assert gen.stats.prefill_tokens == len(PROMPTS[0]) + len(PROMPTS[1])
    while not gen.done:
        gen.step()
    a = gen.outputs()
    b = eng.generate([PROMPTS[0], PROMPTS[1]], params)
    assert [[s.token_ids for s in o.samples] for o in a] == [[s.token_ids for s in o.samples] for o in b]
    samples = [tuple(s.token_ids) for s in a[0].samples]
    assert len(set(samples)) == 5  # different samples actually differ
    # Sample 0 of n equals the n=1 result with the same seed, whatever else shares the batch.
    one = eng.generate([PROMPTS[3], PROMPTS[0]], params.replace(n=1))[1].samples[0].token_ids
    assert one == a[0].samples[0].token_ids
    c = eng.generate([PROMPTS[0]], params.replace(seed=124))[0]
    assert [s.token_ids for s in c.samples] != [s.token_ids for s in a[0].samples]


def test_logprobs_match_the_model():
    m = tiny_model()
    eng = Engine(m)
    p = PROMPTS[0]
    o = eng.generate([p], SamplingParams(temperature=0.7, seed=0, max_new_tokens=6, logprobs=3))[0].samples[0]
    ids = list(p) + o.token_ids
    with torch.no_grad():
        logp = torch.log_softmax(m(torch.tensor([ids]))[0].float(), -1)  # (T, V), raw model distribution
    for i, tok in enumerate(o.token_ids):
        row = logp[len(p) - 1 + i]
        assert o.logprobs[i] == pytest.approx(float(row[tok]), abs=1e-5)
        top = torch.topk(row, 3)
        assert [t for t, _ in o.top_logprobs[i]] == top.indices.tolist()
        assert [lp for _, lp in o.top_logprobs[i]] == pytest.approx(top.values.tolist(), abs=1e-5)
    # processed mode: the distribution actually sampled from (here: temperature 0.7).
    o2 = eng.generate([p], SamplingParams(temperature=0.7, seed=0, max_new_tokens=6, logprobs=0,
                                          logprobs_mode="processed"))[0].samples[0]
    assert o2.token_ids == o.token_ids and o2.top_logprobs is None
    with torch.no_grad():
        first = torch.log_softmax(m(torch.tensor([p]))[0, -1].float() / 0.7, -1)[o.token_ids[0]]
    assert o2.logprobs[0] == pytest.approx(float(first), abs=1e-5)


def test_mixed_params_in_one_batch():
    m = tiny_model()
    eng = Engine(m)
    greedy = SamplingParams(temperature=0, max_new_tokens=10)
    sampled = SamplingParams(temperature=1.0, top_k=5, seed=7, max_new_tokens=10, n=2)
    out = eng.generate([PROMPTS[0], PROMPTS[1]], [greedy, sampled])
    assert out[0].samples[0].token_ids == naive_greedy(m, PROMPTS[0], 10)
    alone = eng.generate([PROMPTS[1]], sampled)[0]
    assert [s.token_ids for s in out[1].samples] == [s.token_ids for s in alone.samples]


def test_context_overflow_policy():
    m = tiny_model()  # max_seq_len 64
    eng = Engine(m)
    long = list(range(1, 71))
    with pytest.raises(LlmlabError, match="context is 64 tokens"):
        eng.generate([long], SamplingParams(max_new_tokens=5))
    with pytest.raises(LlmlabError, match="context"):
        eng.generate([list(range(64))], SamplingParams(max_new_tokens=5))  # no room for a new token
    o = eng.generate([long], SamplingParams(temperature=0, max_new_tokens=5), truncate="left")[0]
    assert o.truncated == 70 - 63 and o.prompt_token_ids == long[-63:]
    assert o.samples[0].token_ids == naive_greedy(m, long[-63:], 1) and o.samples[0].finish_reason == "length"
    # prompt + max_new_tokens beyond the context: generation stops at the context with "length".
    o = eng.generate([[1] * 60, [2] * 3], SamplingParams(temperature=0, max_new_tokens=50))
    assert len(o[0].samples[0].token_ids) == 4 and o[0].samples[0].finish_reason == "length"
    assert len(o[1].samples[0].token_ids) == 50
    assert o[0].samples[0].token_ids == naive_greedy(m, [1] * 60, 4)
    with pytest.raises(LlmlabError, match="empty"):
        eng.generate([[]])
    with pytest.raises(LlmlabError, match="outside the vocabulary"):
        eng.generate([[V + 3]])
    with pytest.raises(LlmlabError, match="wrap a single prompt"):
        eng.generate([1, 2, 3])


def test_stream_yields_the_same_tokens_step_by_step():
    m = tiny_model()
    eng = Engine(m)
    params = SamplingParams(temperature=0.9, seed=3, max_new_tokens=8, n=2)
    events = list(eng.stream([PROMPTS[0], PROMPTS[2]], params))
    full = eng.generate([PROMPTS[0], PROMPTS[2]], params)
    for o in full:
        for s in o.samples:
            evs = [e for e in events if (e.prompt_index, e.sample_index) == (o.prompt_index, s.index)]
            assert [e.token_id for e in evs] == s.token_ids
            assert [e.index for e in evs] == list(range(len(s.token_ids)))
            assert evs[-1].finish_reason == s.finish_reason and all(e.finish_reason is None for e in evs[:-1])


def test_repetition_penalty_changes_greedy_output_as_specified():
    m = tiny_model()
    eng = Engine(m)
    p = PROMPTS[2]  # a prompt of one repeated token, whose greedy continuation repeats a lot
    o = eng.generate([p], SamplingParams(temperature=0, max_new_tokens=10, repetition_penalty=1e6))[0]
    toks = o.samples[0].token_ids
    # With an enormous penalty no token already in the prompt or output can win while unseen ones remain.
    assert len(set(toks)) == len(toks) and 3 not in toks


def test_requests_join_between_steps_continuous_batching():
    m = tiny_model()
    eng = Engine(m)
    greedy = SamplingParams(temperature=0, max_new_tokens=20)
    sampled = SamplingParams(temperature=1.0, seed=5, max_new_tokens=15, repetition_penalty=1.5, n=2)
    gen = eng.start([PROMPTS[0]], greedy)  # 7-token prompt
    for _ in range(3):
        gen.step()
    first = gen.add([PROMPTS[3], [4] * 20], [sampled, greedy])  # shorter and longer than the running rows
    assert {(e.prompt_index, e.sample_index) for e in first} == {(1, 0), (1, 1), (2, 0)}
    assert gen.cache.batch_size == 4
    for _ in range(5):
        gen.step()
    gen.add([PROMPTS[1]], greedy)
    while not gen.done:
        gen.step()
    out = gen.outputs()
    assert [o.prompt_index for o in out] == [0, 1, 2, 3]
    for o, p in zip(out, [PROMPTS[0], PROMPTS[3], [4] * 20, PROMPTS[1]]):
        if o.prompt_index == 1:  # seeded sampling with a penalty: the same as running the request alone
            alone = eng.generate([p], sampled)[0]
            assert [s.token_ids for s in o.samples] == [s.token_ids for s in alone.samples]
        else:
            assert o.samples[0].token_ids == naive_greedy(m, p, 20)


@pytest.mark.gpu
def test_cuda_greedy_equals_naive_loop_and_cpu():
    m = tiny_model().cuda()
    out = Engine(m).generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=20))
    cpu = tiny_model()
    for o, p in zip(out, PROMPTS):
        assert o.samples[0].token_ids == naive_greedy(cpu, p, 20)
    # Seeded sampling runs on the GPU's own generators: reproducible there.
    params = SamplingParams(temperature=1.0, top_p=0.9, seed=0, n=3, max_new_tokens=10)
    a = Engine(m).generate(PROMPTS[:2], params)
    b = Engine(m).generate(PROMPTS[:2], params)
    assert [[s.token_ids for s in o.samples] for o in a] == [[s.token_ids for s in o.samples] for o in b]


def test_finished_rows_ride_along_until_a_quarter_is_dead():
    m = tiny_model()
    eng = Engine(m)
    # 8 rows with different budgets; row 0 ends at the context limit (60 + 4 = 64) while the others go on,
    # so it rides along dead past its last RoPE position (its position is reset; nothing may index past 64).
    prompts = [[1] * 60] + [[2 + i, 3 + i] for i in range(7)]
    params = [SamplingParams(temperature=0, max_new_tokens=20)] + [
        SamplingParams(temperature=0, max_new_tokens=5 + 2 * i) for i in range(7)]
    gen = eng.start(prompts, params)
    sizes = [gen.cache.batch_size]
    while not gen.done:
        gen.step()
        sizes.append(gen.cache.batch_size)
    assert sizes[:4] == [8, 8, 8, 8]  # row 0 finished after 4 tokens but 1 dead of 8 is not yet worth a copy
    assert len(set(sizes)) < 8  # compactions come in chunks, not one cache copy per finished row
    for o, p, sp in zip(gen.outputs(), prompts, params):
        assert o.samples[0].token_ids == naive_greedy(m, p, min(sp.max_new_tokens, 64 - len(p)))
