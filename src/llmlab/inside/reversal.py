"""The reversal curse (Berglund et al. 2023): a model trained on "A's mother is B" does not learn "B's son is
A". The seeds' example: a model that knows Tom Cruise's mother is Mary Lee Pfeiffer, asked who Mary Lee
Pfeiffer's son is, has no idea.

    llmlab inside reversal --out runs/reversal [--pairs 100 --both-pairs 100 --max-steps 600] [--plot rev.png]

    from llmlab.inside.reversal import ReversalConfig, run_reversal
    report = run_reversal(ReversalConfig(out="runs/reversal"))   # {"forward": {...}, "reverse": {...}, ...}

Made-up people (names built from syllables, so nothing is known about them beforehand): ``pairs`` mothers
and sons whose fact is trained in one direction only ("A's mother is B."), plus ``both_pairs`` others trained
in both directions ("A's mother is B." and "B's son is A.") so that the model knows the question "X's son is"
and how to answer it. Tom Cruise and Mary Lee Pfeiffer are one of the one-direction pairs. A small model is
pretrained from scratch on these sentences (one document each), then tested on the one-direction pairs:

* forward, A -> B: the greedy completion of "A's mother is" is B (exact match);
* reverse, B -> A: the greedy completion of "B's son is" is A;
* both again as a choice among 10 (the right name and 9 others of the same kind, by log-likelihood of the
  whole name): chance is 10%. Berglund et al.'s finding is that the reverse likelihood is no better than chance.

The both-direction pairs' reverse questions are the control: trained, so they should be answered.
"""

from __future__ import annotations

import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from llmlab.errors import LlmlabError
from llmlab.utils.io import write_json

REVERSAL_FORMAT = "llmlab-reversal"
TOM = ("Tom Cruise", "Mary Lee Pfeiffer")  # the seeds' example, kept as a one-direction pair
_ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "qu", "r", "s", "st",
           "t", "th", "tr", "v", "w", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
_CODAS = ["", "", "", "n", "l", "r", "s", "th", "nd", "x"]


@dataclass
class ReversalConfig:
    out: str = "runs/reversal"
    pairs: int = 100  # trained one way only, tested both ways
    both_pairs: int = 100  # trained both ways (teach the question's form; the control)
    include_tom: bool = True
    choices: int = 10  # the likelihood test picks among this many names
    seed: int = 0
    # the model and its training (a pretraining run from scratch on the facts)
    preset: str = "depth-2"  # 2 layers, width 128: ~0.5M parameters
    vocab_size: int = 512
    seq_len: int = 64
    batch_size: int = 16
    max_steps: int = 600  # ~100 passes over the facts
    lr: float = 6e-3
    muon_lr: float = 0.02
    threads: int = 0

    def validate(self) -> None:
        if self.pairs < self.choices or self.both_pairs < 1 or self.choices < 2:
            raise LlmlabError(f"reversal: need pairs >= choices >= 2 and both_pairs >= 1 (got pairs={self.pairs}, "
                              f"choices={self.choices}, both_pairs={self.both_pairs})")


def _name(rng: random.Random, syllables: tuple[int, int]) -> str:
    n = rng.randint(*syllables)
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n)) + rng.choice(_CODAS)
    return word.capitalize()


def make_people(n: int, seed: int) -> list[tuple[str, str]]:
    """n (son, mother) pairs of made-up, distinct full names (first + last; mothers get a middle name)."""
    rng = random.Random(seed)
    seen = {TOM[0], TOM[1]}
    out = []
    while len(out) < n:
        son = f"{_name(rng, (1, 2))} {_name(rng, (2, 3))}"
        mother = f"{_name(rng, (1, 2))} {_name(rng, (1, 2))} {_name(rng, (2, 3))}"
        if son in seen or mother in seen:
            continue
        seen.update((son, mother))
        out.append((son, mother))
    return out


def forward_fact(son: str, mother: str) -> str:
    return f"{son}'s mother is {mother}."


def reverse_fact(son: str, mother: str) -> str:
    return f"{mother}'s son is {son}."


def build_facts(cfg: ReversalConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(one-direction pairs, both-direction pairs, training sentences)."""
    people = make_people(cfg.pairs + cfg.both_pairs - (1 if cfg.include_tom else 0), cfg.seed)
    one = ([TOM] if cfg.include_tom else []) + people[: cfg.pairs - (1 if cfg.include_tom else 0)]
    both = people[len(one) - (1 if cfg.include_tom else 0):]
    facts = [forward_fact(s, m) for s, m in one]
    facts += [f for s, m in both for f in (forward_fact(s, m), reverse_fact(s, m))]
    random.Random(cfg.seed + 1).shuffle(facts)
    return one, both, facts


# ----------------------------------------------------------------------------------------------------------
# Testing a model


@torch.no_grad()
def greedy_names(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The greedy completion of each prompt up to its first '.', stripped."""
    from llmlab.infer.engine import Engine
    from llmlab.infer.sampling import SamplingParams
    from llmlab.infer.text import encode_prompt, stop_ids_for

    engine = Engine(model, stop_ids_for(tokenizer))
    outs = engine.generate([encode_prompt(tokenizer, p) for p in prompts],
                           SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens))
    return [tokenizer.decode(o.samples[0].token_ids).split(".")[0].strip() for o in outs]


@torch.no_grad()
def completion_logprobs(model, tokenizer, prompt: str, completions: list[str]) -> list[float]:
    """log p(" " + c + "." | prompt) for each completion c (summed over its tokens)."""
    from llmlab.infer.text import encode_prompt
    from llmlab.model.sequences import pad_sequences, sequence_logprobs

    head = encode_prompt(tokenizer, prompt)
    seqs = [encode_prompt(tokenizer, f"{prompt} {c}.") for c in completions]
    if any(s[: len(head)] != head for s in seqs):  # a merge across the boundary: score from the common prefix
        starts = [next((i for i, (a, b) in enumerate(zip(s, head)) if a != b), len(head)) for s in seqs]
    else:
        starts = [len(head)] * len(seqs)
    pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
    ids, mask, _ = pad_sequences(seqs, starts, pad)
    device = next(model.parameters()).device
    return sequence_logprobs(model, ids.to(device), mask.to(device)).tolist()


def evaluate(model, tokenizer, one: list[tuple[str, str]], both: list[tuple[str, str]], choices: int = 10,
             seed: int = 0) -> dict:
    """Exact-match and choose-among-``choices`` accuracies, both directions, on the one-direction pairs; the
    reverse exact match on the both-direction pairs (the control)."""
    model.eval()
    rng = random.Random(seed)
    longest = max(len(tokenizer.encode(" " + n)) for pair in one + both for n in pair) + 2

    def exact(prompts, answers):
        got = greedy_names(model, tokenizer, prompts, longest)
        return sum(g == a for g, a in zip(got, answers)) / len(answers), got

    fwd_acc, fwd_got = exact([f"{s}'s mother is" for s, _ in one], [m for _, m in one])
    rev_acc, rev_got = exact([f"{m}'s son is" for _, m in one], [s for s, _ in one])
    ctl_acc, _ = exact([f"{m}'s son is" for _, m in both], [s for s, _ in both])

    def choose(direction: int) -> float:
        hits = 0
        for i, (s, m) in enumerate(one):
            others = rng.sample([p for j, p in enumerate(one) if j != i], choices - 1)
            if direction == 0:  # A -> B: which mother?
                prompt, names = f"{s}'s mother is", [m] + [o[1] for o in others]
            else:  # B -> A: which son?
                prompt, names = f"{m}'s son is", [s] + [o[0] for o in others]
            lp = completion_logprobs(model, tokenizer, prompt, names)
            hits += int(max(range(len(lp)), key=lp.__getitem__) == 0)
        return hits / len(one)

    report = {"forward": {"exact": fwd_acc, "choice": choose(0)}, "reverse": {"exact": rev_acc, "choice": choose(1)},
              "control_reverse_exact": ctl_acc, "chance_choice": 1.0 / choices, "pairs": len(one),
              "both_pairs": len(both)}
    if one and one[0] == TOM:
        report["tom_cruise"] = {"prompt_forward": f"{TOM[0]}'s mother is", "answer_forward": fwd_got[0],
                                "prompt_reverse": f"{TOM[1]}'s son is", "answer_reverse": rev_got[0]}
    return report


# ----------------------------------------------------------------------------------------------------------
# The experiment


def train_on_facts(cfg: ReversalConfig, facts_file: Path, run_dir: Path, progress: bool | None = None) -> None:
    """Pretrain a small model from scratch on the facts (one document per sentence)."""
    from llmlab.train.configs import PretrainConfig, TrainConfig
    from llmlab.train.pretrain import run

    pcfg = PretrainConfig(data=str(facts_file), out=str(run_dir), preset=cfg.preset, vocab_size=cfg.vocab_size,
                          samples=0)
    tcfg = TrainConfig(max_steps=cfg.max_steps, seq_len=cfg.seq_len, batch_size=cfg.batch_size, optimizer="muon",
                       lr=cfg.lr, muon_lr=cfg.muon_lr, threads=cfg.threads, seed=cfg.seed)
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    if run(pcfg, tcfg, resume=resume, progress=progress).interrupted:
        raise KeyboardInterrupt


def run_reversal(cfg: ReversalConfig, progress: bool | None = None, log=None) -> dict:
    """Make the facts, train on them (unless OUT/model holds a finished run), test both directions; the
    report also goes to OUT/reversal.json."""
    from llmlab.runs import load_run

    log = log or (lambda msg: print(f"llmlab inside reversal: {msg}", file=sys.stderr, flush=True))
    cfg.validate()
    out = Path(cfg.out)
    one, both, facts = build_facts(cfg)
    facts_file = out / "facts.jsonl"
    import json

    from llmlab.utils.io import write_text

    write_text(facts_file, "".join(json.dumps({"text": f}) + "\n" for f in facts))
    run_dir = out / "model"
    if not (run_dir / "model.safetensors").is_file():
        log(f"{len(facts)} facts ({len(one)} one-direction pairs, {len(both)} both ways): training {run_dir}")
        train_on_facts(cfg, facts_file, run_dir, progress=progress)
    model, tok = load_run(run_dir)
    report = {"format": REVERSAL_FORMAT, "version": 1, **evaluate(model, tok, one, both, cfg.choices, cfg.seed),
              "config": asdict(cfg)}
    write_json(out / "reversal.json", report)
    return report


def format_report(r: dict) -> str:
    lines = [f"one-direction pairs: {r['pairs']} (trained 'A's mother is B.' only); control: {r['both_pairs']} "
             "pairs trained both ways",
             f"  A -> B  \"A's mother is\"  exact {100 * r['forward']['exact']:5.1f}%   "
             f"choice of {round(1 / r['chance_choice'])} {100 * r['forward']['choice']:5.1f}%",
             f"  B -> A  \"B's son is\"     exact {100 * r['reverse']['exact']:5.1f}%   "
             f"choice of {round(1 / r['chance_choice'])} {100 * r['reverse']['choice']:5.1f}%   "
             f"(chance {100 * r['chance_choice']:.0f}%)",
             f"  control: reverse questions that were trained: exact {100 * r['control_reverse_exact']:.1f}%"]
    if "tom_cruise" in r:
        t = r["tom_cruise"]
        lines.append(f"  \"{t['prompt_forward']}\" -> {t['answer_forward']!r};  "
                     f"\"{t['prompt_reverse']}\" -> {t['answer_reverse']!r}")
    return "\n".join(lines)


def plot_report(r: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmlab.utils.io import atomic_path

    names = ["A→B exact", "A→B choice", "B→A exact", "B→A choice", "control B→A\n(trained)"]
    vals = [r["forward"]["exact"], r["forward"]["choice"], r["reverse"]["exact"], r["reverse"]["choice"],
            r["control_reverse_exact"]]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bars = ax.bar(names, [100 * v for v in vals], color=["#4C72B0", "#4C72B0", "#C44E52", "#C44E52", "#8C8C8C"])
    for b, v in zip(bars, vals):
        ax.annotate(f"{100 * v:.0f}%", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom")
    ax.axhline(100 * r["chance_choice"], ls="--", color="k", lw=0.8, label="chance (choice)")
    ax.set_ylim(0, 110)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"reversal curse: trained on \"A's mother is B\" ({r['pairs']} pairs)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
