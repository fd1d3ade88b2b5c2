"""Preference/prompt JSONL: good lines parse, bad lines fail naming file:line; the default generator's data."""

import json

import pytest
import torch
from rl_fixtures import TEXT, write_jsonl

from llmlab.chat.pref_data import PairBatches, encode_pairs, read_pairs, read_prompts
from llmlab.errors import LlmlabError
from llmlab.model.sequences import pad_sequences


@pytest.fixture(scope="module")
def small_tok():
    from llmlab.tokenizer import Tokenizer

    return Tokenizer.train(TEXT, vocab_size=256 + 16 + 40)


def test_pairs_strings_and_message_lists(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": "What is 2 plus 2?", "chosen": "4", "rejected": "5", "kind": "arithmetic"},
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
         "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": "Hello! User: more"},
    ])
    pairs = read_pairs(path)
    assert pairs[0].prompt == [{"role": "user", "content": "What is 2 plus 2?"}]
    assert pairs[0].chosen == [{"role": "assistant", "content": "4"}] and pairs[0].meta == {"kind": "arithmetic"}
    assert pairs[1].prompt[0]["role"] == "system" and pairs[1].chosen[0]["content"] == "Hello!"


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ('["a"]', "expected a JSON object"),
    ('{"prompt": "q", "chosen": "a"}', "missing field 'rejected'"),
    ('{"prompt": "q", "chosen": "a", "rejected": "a"}', "identical"),
    ('{"prompt": 3, "chosen": "a", "rejected": "b"}', "field 'prompt' must be a string or a list"),
    ('{"prompt": [{"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"}', "must end with a user"),
    ('{"prompt": "q", "chosen": [{"role": "user", "content": "x"}], "rejected": "b"}', "assistant message"),
    ('{"prompt": "", "chosen": "a", "rejected": "b"}', "empty"),
])
def test_bad_pair_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n\n' + line + "\n")
    with pytest.raises(LlmlabError) as e:
        read_pairs(path)
    assert f"{path}:3:" in str(e.value) and message in str(e.value)


def test_prompts_and_their_errors(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "What is 1 plus 1?", "answer": "2"}, {"prompt": "Hi"}])
    prompts = read_prompts(path)
    assert prompts[0].answer == "2" and prompts[1].answer is None
    bad = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "q", "answer": 2}])
    with pytest.raises(LlmlabError, match=r"b.jsonl:1: field 'answer' must be a string"):
        read_prompts(bad)
    with pytest.raises(LlmlabError, match="missing field 'prompt'"):
        read_prompts(write_jsonl(tmp_path / "c.jsonl", [{"question": "q"}]))
    with pytest.raises(LlmlabError, match="file not found"):
        read_prompts(tmp_path / "nope.jsonl")


def test_response_mask_covers_answer_and_end(tmp_path, small_tok):
    pairs = read_pairs(write_jsonl(tmp_path / "p.jsonl", [{"prompt": "What is 12 plus 7?", "chosen": "19.",
                                                           "rejected": "20. Good answer."}]))
    enc, dropped = encode_pairs(pairs, small_tok, max_len=64)
    assert dropped == 0
    e = enc[0]
    ids, mask, last = pad_sequences([e.chosen, e.rejected], [e.chosen_start, e.rejected_start], small_tok.pad_id)
    # mask[t] = 1 exactly where ids[t + 1] is an answer token: the answer and its closing <|end|>
    targets = [ids[0, t + 1].item() for t in range(ids.shape[1] - 1) if mask[0, t]]
    assert small_tok.decode(targets[:-1]) == "19." and targets[-1] == small_tok.end_id
    assert last.tolist() == [len(e.chosen) - 1, len(e.rejected) - 1]
    assert encode_pairs(pairs, small_tok, max_len=5) == ([], 1)  # too long: dropped and counted


def test_pair_batches_resume_exactly(tmp_path, small_tok):
    rows = [{"prompt": f"What is {i} plus 1?", "chosen": str(i + 1), "rejected": str(i + 2)} for i in range(10)]
    enc, _ = encode_pairs(read_pairs(write_jsonl(tmp_path / "p.jsonl", rows)), small_tok, 64)
    a = PairBatches(enc, 4, small_tok.pad_id, seed=3)
    for _ in range(3):
        a.next_batch()
    state = a.state_dict()
    b = PairBatches(enc, 4, small_tok.pad_id, seed=3)
    b.load_state_dict(state)
    for _ in range(3):
        x, y = a.next_batch(), b.next_batch()
        assert torch.equal(x["index"], y["index"]) and torch.equal(x["input_ids"], y["input_ids"])


@pytest.mark.slow
def test_default_generator(tmp_path):
    from llmlab.tasks.pref_synth import VERIFIABLE_KINDS, RLDataConfig, _check_no_overlap, write_pref_data

    counts = dict(n_pairs=300, n_val_pairs=60, n_tasks=200, n_val_tasks=60, seed=0)
    info = write_pref_data(RLDataConfig(out=tmp_path, **counts))
    again = write_pref_data(RLDataConfig(out=tmp_path / "again", **counts))
    assert (tmp_path / "pairs_train.jsonl").read_text() == (tmp_path / "again" / "pairs_train.jsonl").read_text()
    pairs = [json.loads(l) for l in (tmp_path / "pairs_train.jsonl").read_text().splitlines()]
    val = [json.loads(l) for l in (tmp_path / "pairs_val.jsonl").read_text().splitlines()]
    assert len(pairs) == 300 and len(val) == 60 and all(p["chosen"] != p["rejected"] for p in pairs)
    assert set(info["rejected_train"]) == {"wrong", "ramble", "compliance"}
    assert _check_no_overlap(pairs, val) <= 3  # the split is by item; only generic prompts ("Hi") may repeat
    by_kind = {p["kind"]: p for p in pairs if p["rejected_is"] == "wrong"}
    arith = by_kind["arithmetic"]
    assert arith["chosen"].isdigit() and arith["rejected"].lstrip("-").isdigit() and arith["chosen"] != arith["rejected"]
    who = by_kind["who_said"]
    assert ", in " in who["rejected"] and who["rejected"] != who["chosen"]
    refusal = next(p for p in pairs if p["kind"] == "refusal")
    assert refusal["rejected_is"] == "compliance" and "sorry" in refusal["chosen"].lower()
    tasks = read_prompts(tmp_path / "tasks_val.jsonl")
    assert len(tasks) == 60 and all(t.answer and t.meta["kind"] in VERIFIABLE_KINDS for t in tasks)


def test_more_tasks_keep_the_other_files_and_extend_their_own(tmp_path):
    # The speedrun asks for many GRPO tasks (fresh items) but few chat prompts (each costs DPO's ranked pairs 8
    # samples): a count extends only its own file, whose first rows stay the same.
    from llmlab.tasks.pref_synth import RLDataConfig, write_pref_data

    small = write_pref_data(RLDataConfig(out=tmp_path / "a", n_pairs=50, n_val_pairs=20, n_tasks=40, n_val_tasks=20,
                                         seed=0))
    big = write_pref_data(RLDataConfig(out=tmp_path / "b", n_pairs=50, n_val_pairs=20, n_tasks=400, n_val_tasks=20,
                                       n_chat_prompts=40, seed=0))
    assert (big["n_tasks_train"], big["n_chat_prompts_train"], small["n_chat_prompts_train"]) == (400, 40, 40)
    for name in ("pairs_train", "pairs_val", "tasks_val", "chat_prompts_train", "chat_prompts_val"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_text() == (tmp_path / "b" / f"{name}.jsonl").read_text()
    few, many = ((tmp_path / d / "tasks_train.jsonl").read_text().splitlines() for d in "ab")
    assert many[:40] == few and len(set(many)) > 390


def test_task_shares_reweight_training_tasks_only(tmp_path):
    # GRPO's training mix can favour a kind (the speedrun: arithmetic, the one this model can learn by RL); the
    # held-out tasks, and every other file, stay exactly those of the generator's mix.
    from collections import Counter

    from llmlab.tasks.pref_synth import RLDataConfig, write_pref_data

    counts = dict(n_pairs=50, n_val_pairs=20, n_tasks=200, n_val_tasks=40, seed=0)
    plain = write_pref_data(RLDataConfig(out=tmp_path / "a", **counts))
    shared = write_pref_data(RLDataConfig(out=tmp_path / "b", **counts,
                                          task_shares={"arithmetic": 0.55, "parity": 0.1}))
    kinds = Counter(t.meta["kind"] for t in read_prompts(tmp_path / "b" / "tasks_train.jsonl"))
    assert (kinds["arithmetic"], kinds["parity"], sum(kinds.values())) == (110, 20, 200)
    assert plain["task_kinds_train"]["arithmetic"] < 80 and len(kinds) == len(plain["task_kinds_train"])
    for name in ("pairs_train", "pairs_val", "tasks_val", "chat_prompts_train", "chat_prompts_val"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_text() == (tmp_path / "b" / f"{name}.jsonl").read_text()
    for bad, msg in (({"spell": 0.5}, "unknown kind"), ({"arithmetic": 0.8, "parity": 0.3}, "summing to at most 1")):
        with pytest.raises(ValueError, match=msg):
            write_pref_data(RLDataConfig(out=tmp_path / "c", n_pairs=5, n_val_pairs=5, n_tasks=20, n_val_tasks=5,
                                         task_shares=bad))


@pytest.mark.parametrize("share, msg", [("arithmetic", "expected KIND=FRACTION"), ("spell=0.5", "unknown kind"),
                                        ("arithmetic=x", "expected KIND=FRACTION")])
def test_rl_data_cli_bad_task_share_is_one_line(tmp_path, capsys, share, msg):
    from llmlab.cli import main

    assert main(["rl-data", "--out", str(tmp_path), "--task-share", share]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and not list(tmp_path.iterdir())
