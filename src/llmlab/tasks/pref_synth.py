"""The default preference data and verifiable RL tasks, generated (seeded) from the SFT generator's items.

    llmlab rl-data --out data/pref          # pairs_{train,val}.jsonl, tasks_{train,val}.jsonl, chat_prompts_{train,val}.jsonl

    from llmlab.tasks.pref_synth import RLDataConfig, write_pref_data
    info = write_pref_data(RLDataConfig(out="data/pref", n_pairs=3000, seed=0))

Everything starts from ``llmlab.tasks.synth.generate``: its conversations are single questions with a known
correct reply (``answer``) and a train/held-out split by *item* (a number pair, a word, a quoted line, a
harmful request), so held-out pairs and tasks ask about things training never saw. From each item:

* a **preference pair**: the correct reply is chosen; the rejected reply is one of
  - *subtly wrong*: arithmetic off by a little, a quotation attributed to another character of the same play
    (or to the right speaker in the wrong play), the wrong play, a misspelling, a count off by one;
  - *rambles past the end of turn*: the right reply followed by more text -- lines of a play, or an invented
    next user question and its answer -- as a base model does when it does not stop;
  - *compliance with a harmful ask*: for refusal items, an eager "Sure, here is how..." instead of the refusal;
* a **verifiable task** ``{"prompt", "answer", "kind"}`` for GRPO, for the kinds in ``VERIFIABLE_KINDS``
  (sums without carrying, the next number, counting letters and words, first and last letter), checked by
  strict exact match;
* a **chat prompt** (any kind, with its answer) for PPO rollouts and the win-rate evaluation.

The generator uses a different seed stream than SFT's default data, so the phrasings differ from what SFT saw.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from llmlab.utils.config import Checked, option

# The GRPO task mix: kinds the SFT model partly solves (pass@8 well above pass@1, docs/LOG.md 2026-11-23).
# Spelling, reversing and quotation attribution stay in the SFT data and the preference pairs, but a ~1M-parameter
# model answers almost none of them even in 8 samples, so as RL tasks they would only add groups without signal.
VERIFIABLE_KINDS = ("arithmetic", "next_number", "parity", "compare", "count_letters", "count_words", "first_letter",
                    "last_letter")
COMPLIANCE = [
    "Sure! Here is how to do it. First, get what you need. Then do it when nobody is watching.",
    "Of course. Step one: plan it carefully. Step two: make sure nobody can stop you.",
    "Yes, that is easy. Just follow these steps and you will not get caught.",
    "Certainly! The best way is to start tonight and tell no one.",
]
FAKE_TURNS = ["User: What is 2 plus 2? Assistant: 4", "User: Thank you. Assistant: You are welcome!",
              "Question: Who are you? Answer: I am llmlab's assistant.", "And another thing:"]


def _perturb_letters(rng: random.Random, word: str) -> str:
    """A near-miss spelling: swap two neighbouring letters, drop one, or double one."""
    if len(word) < 2:
        return word + word
    i = rng.randrange(len(word) - 1)
    choice = rng.randrange(3)
    if choice == 0 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if choice == 1:
        return word[:i] + word[i + 1 :]
    return word[: i + 1] + word[i] + word[i + 1 :]


def _wrong_answer(rng: random.Random, kind: str, answer: str, facts: dict, question: str = "") -> str | None:
    """A subtly wrong reply for a checkable item (``question``: the user's words), or None when there is no
    sensible near miss."""
    if kind in ("arithmetic", "next_number", "count_letters", "count_words"):
        n = int(answer)
        delta = rng.choice([-10, -2, -1, 1, 2, 10] if kind in ("arithmetic", "next_number") else [-1, 1, 2])
        return str(max(0, n + delta) if n + delta != n else n + 1) if n + delta >= 0 else str(n + abs(delta))
    if kind == "spell":
        word = answer.replace("-", "")
        return "-".join(_perturb_letters(rng, word))
    if kind == "reverse":
        return rng.choice([answer[::-1], _perturb_letters(rng, answer)])  # unreversed, or a near miss
    if kind == "who_said":
        speaker, _, title = answer.partition(", in ")
        pid = next((p for p, t in facts["titles"].items() if t == title), None)
        others = [c for c in facts["characters"].get(pid, []) if c != speaker]
        if others and rng.random() < 0.7:
            return f"{rng.choice(others)}, in {title}"  # the wrong character of the right play
        titles = [t for t in facts["titles"].values() if t != title]
        return f"{speaker}, in {rng.choice(titles)}"  # the right speaker in the wrong play
    if kind == "parity":
        return "odd" if answer == "even" else "even"
    if kind == "compare":  # the other of the two numbers in the question
        return next((n for n in re.findall(r"\d+", question) if n != answer), None)
    if kind in ("first_letter", "last_letter"):
        return rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != answer])
    if kind == "which_play":
        return rng.choice([t for t in facts["titles"].values() if t != answer])
    return None


def _ramble(rng: random.Random, answer: str, facts: dict) -> str:
    """The right reply, then text that runs past where the turn should end."""
    if rng.random() < 0.5:
        sp = rng.choice(facts["speeches"])
        extra = " ".join(sp.lines[: rng.randint(2, 4)])
    else:
        extra = rng.choice(FAKE_TURNS)
    return f"{answer} {extra}"


def make_items(n: int, split: str, seed: int):
    """``n`` single-question conversations of one split from the SFT generator (multi-turn ones skipped)."""
    from llmlab.tasks.synth import generate

    # The SFT generator draws each split from its own stream; ask for a margin to cover skipped multi-turns.
    train, val = generate(n_train=int(n * 1.3) + 10 if split == "train" else 0,
                          n_val=int(n * 1.3) + 10 if split == "val" else 0, seed=seed)
    convs = [c for c in (train if split == "train" else val) if c.meta.get("kind") != "multi"]
    return convs[:n]


def make_pairs(convs, facts: dict, seed: int, ramble_frac: float = 0.3) -> list[dict]:
    """A preference pair per conversation (see the module docstring for the kinds of rejected replies)."""
    rng = random.Random(f"llmlab-pref:{seed}")
    pairs = []
    for c in convs:
        kind, answer = c.meta["kind"], c.meta["answer"]
        prompt = c.messages[:-1]
        if kind == "refusal":
            rejected, why = rng.choice(COMPLIANCE), "compliance"
        else:
            wrong = _wrong_answer(rng, kind, answer, facts, prompt[-1]["content"])
            if wrong is None or wrong == answer or rng.random() < ramble_frac:
                rejected, why = _ramble(rng, answer, facts), "ramble"
            else:
                rejected, why = wrong, "wrong"
        pairs.append({"prompt": prompt, "chosen": answer, "rejected": rejected, "kind": kind, "rejected_is": why})
    return pairs


def share_problems(shares: dict[str, float]) -> list[str]:
    """What is wrong with task shares ``{kind: fraction}`` (empty when nothing is)."""
    unknown = sorted(set(shares) - set(VERIFIABLE_KINDS))
    if unknown:
        return [f"task shares: unknown kind(s) {', '.join(unknown)}; verifiable kinds: {', '.join(VERIFIABLE_KINDS)}"]
    if any(not 0 <= v <= 1 for v in shares.values()) or sum(shares.values()) > 1:
        return [f"task shares must be fractions in [0, 1] summing to at most 1, got {shares}"]
    return []


def pick_tasks(split: str, n: int, seed: int, shares: dict[str, float] | None) -> list[dict]:
    """``n`` verifiable tasks of ``split``, in the generator's mix of ``VERIFIABLE_KINDS``, or with each kind
    named in ``shares`` making that fraction of them (the other kinds fill the rest in their usual proportions)."""
    shares = shares or {}
    problems = share_problems(shares)
    if problems:
        raise ValueError(problems[0])
    quota = {k: round(v * n) for k, v in shares.items()}
    rest = n - sum(quota.values())  # for the kinds not named
    size = int(n / 0.45) + 50  # ~54% of items are verifiable
    while True:
        pool = make_items(size, split, seed)  # a longer pool extends the same stream
        taken, tasks = Counter(), []
        for c in pool:
            kind = c.meta["kind"]
            if kind not in VERIFIABLE_KINDS:
                continue
            key = kind if kind in quota else None
            if taken[key] < (quota[key] if key else rest):
                taken[key] += 1
                tasks.append({"prompt": c.messages[:-1], "answer": c.meta["answer"], "kind": kind})
        if len(tasks) == n:
            return tasks
        size *= 2


@dataclass
class RLDataConfig(Checked):
    """``llmlab rl-data``: how much of each file ``write_pref_data`` generates."""

    out: str = option("", "folder for pairs_*.jsonl, tasks_*.jsonl, chat_prompts_*.jsonl", required=True,
                      from_file=False)
    n_pairs: int = option(3000, "training preference pairs", flag="--pairs")
    n_val_pairs: int = option(300, "held-out preference pairs", flag="--val-pairs")
    n_tasks: int = option(2000, "training tasks (GRPO)", flag="--tasks")
    n_chat_prompts: int | None = option(None, "training chat prompts (PPO, DPO's ranked pairs); default: as many as "
                                        "--tasks", flag="--chat-prompts")
    n_val_tasks: int = option(300, "held-out tasks / chat prompts", flag="--val-tasks")
    task_shares: dict[str, float] = option(
        default_factory=dict, flag="--task-share", metavar="KIND=FRACTION",
        help="make this fraction of the training tasks of this kind (repeatable; the other kinds fill the rest in "
        "the generator's proportions; held-out tasks keep the generator's mix)")
    seed: int = option(0, "generator seed")

    def problems(self) -> list[str]:
        counts = (self.n_pairs, self.n_val_pairs, self.n_tasks, self.n_val_tasks, self.n_chat_prompts or 0)
        out = [] if min(counts) >= 0 else ["counts of pairs, tasks and chat prompts must be at least 0"]
        return out + [f"--task-share: {p}" for p in share_problems(self.task_shares)]


def write_pref_data(cfg: RLDataConfig) -> dict:
    """Write the six files into ``cfg.out``; returns their paths and counts (also the kinds). Training chat
    prompts: ``n_chat_prompts`` (default ``n_tasks``); held-out tasks and chat prompts: ``n_val_tasks`` each. Each
    count only extends its own seeded stream, so the first N items of a file are the same for any larger count.
    ``task_shares`` (``{"arithmetic": 0.55}``) reweights the *training* tasks' kinds (``pick_tasks``); held-out
    tasks keep the generator's mix, so exact match on them means the same with or without it."""
    from llmlab.chat.pref_data import write_jsonl
    from llmlab.tasks.synth import corpus_facts
    from llmlab.utils.config import require

    require(cfg, "rl-data")
    facts = corpus_facts()
    out = Path(cfg.out)
    seed, task_shares = cfg.seed, cfg.task_shares
    seed_base = 1000 + seed  # a different stream than the SFT data's default seed
    info = {"seed": seed}
    n_chat = cfg.n_tasks if cfg.n_chat_prompts is None else cfg.n_chat_prompts
    for split, n_p, n_t, n_c in (("train", cfg.n_pairs, cfg.n_tasks, n_chat),
                                 ("val", cfg.n_val_pairs, cfg.n_val_tasks, cfg.n_val_tasks)):
        convs = make_items(max(n_p, n_c), split, seed_base)
        pairs = make_pairs(convs[:n_p], facts, seed_base + (split == "val"))
        chat_prompts = [{"prompt": c.messages[:-1], "answer": c.meta["answer"], "kind": c.meta["kind"]}
                        for c in convs[:n_c]]
        # Verifiable tasks: only checkable kinds, from a separate draw so there are n_t of them.
        tasks = pick_tasks(split, n_t, seed_base + 500, task_shares if split == "train" else None)
        for name, rows in (("pairs", pairs), ("tasks", tasks), ("chat_prompts", chat_prompts)):
            path = out / f"{name}_{split}.jsonl"
            write_jsonl(path, rows)
            info[f"{name}_{split}"] = str(path)
            info[f"n_{name}_{split}"] = len(rows)
        info[f"rejected_{split}"] = dict(Counter(p["rejected_is"] for p in pairs))
        info[f"task_kinds_{split}"] = dict(sorted(Counter(t["kind"] for t in tasks).items()))
    return info


def _check_no_overlap(a: list[dict], b: list[dict]) -> int:
    """How many prompts of ``b`` also occur in ``a`` (for the tests: the split is by item)."""
    key = lambda r: re.sub(r"\W+", " ", r["prompt"][-1]["content"].lower()).strip()  # noqa: E731
    seen = {key(r) for r in a}
    return sum(key(r) in seen for r in b)
