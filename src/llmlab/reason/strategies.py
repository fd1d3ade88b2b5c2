"""System 2 over any generator: direct answers, chain of thought, self-consistency and Tree of Thoughts.

    from llmlab.reason.strategies import StrategyConfig, solve_batch, score
    attempts = solve_batch(gen, task, puzzles, StrategyConfig(method="tot", breadth=5))
    score(task, attempts)                # the exact checker, after the search: .ok, .any_ok
    attempts[0].answer, attempts[0].tokens, attempts[0].tree

Methods (``StrategyConfig.method``):

* ``io``: ask for the answer directly (one sample; greedy unless ``temperature`` > 0).
* ``cot``: ask it to think step by step; the chain of thought is the ``<|think|>`` span and the answer is what
  follows it (the thought is kept in ``Attempt.thought``, not in the answer).
* ``cot-sc``: self-consistency: ``samples`` chains of thought at ``sc_temperature``, majority vote over the
  normalised answers (``task.normalise``; ties go to the answer seen first).
* ``tot``: Tree of Thoughts (Yao et al. 2023). Each level the model *proposes* next thoughts for every kept
  node (``propose_samples`` sampled replies; their distinct thoughts become the children -- a reply that lists
  several, as an endpoint model's may, gives them all) and *values* each new state (``n_evaluate`` sampled sure/likely/impossible
  judgements, summed with ``VALUE_WEIGHTS``). ``search="bfs"`` keeps the ``breadth`` best states per level
  (one node per distinct state, ``distinct_states``);
  ``search="dfs"`` follows the best child first, prunes children valued below ``dfs_prune`` and backtracks
  when a subtree yields no accepted answer, within ``dfs_max_expansions`` propose calls. From a goal state the
  model writes the answer from its path and (``judge``) judges it; answers are ranked by that judgement.

Honest search: every proposal and every value is the model's own reply. Nothing checks a step's arithmetic,
and the exact checker (``task.check``) runs only in ``score``, after the search, on the final answers; the
search never sees its verdict. A level's proposals go to the generator as one batch, then all of its value
prompts as one batch (``n_evaluate`` samples each); BFS runs several puzzles in lockstep so these batches
are larger still. Values are cached by prompt (the same state met twice is judged once), as in the paper.

Endpoint errors: a completion with ``error`` reads as an empty reply; the attempt records the first error and
the run goes on.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from llmlab.errors import LlmlabError
from llmlab.reason.tasks import VALUE_WEIGHTS
from llmlab.reason.tree import Node, Tree

METHODS = ("io", "cot", "cot-sc", "tot")
SEARCHES = ("bfs", "dfs")


@dataclass
class StrategyConfig:
    method: str = "tot"
    temperature: float = 0.0  # io / cot
    samples: int = 10  # cot-sc: k
    sc_temperature: float = 0.7
    search: str = "bfs"  # tot: bfs | dfs
    breadth: int = 5  # tot bfs: states kept per level
    n_evaluate: int = 3  # value samples per state (the paper's 3)
    propose_samples: int = 32  # tot: propose replies sampled per node (their distinct thoughts are the children)
    propose_temperature: float = 1.0
    value_temperature: float = 1.0  # 0 = one greedy judgement counted n_evaluate times
    judge_temperature: float | None = None  # the judge of final answers (None = value_temperature; 0 = greedy)
    judge: bool = True  # the model judges its final answers (sure/impossible); else they rank by their path
    distinct_states: bool = True  # bfs: keep at most one node per state (as written) in a level's top b
    dfs_prune: float = 1.0  # dfs: children valued below this are not explored (1.0: at least one 'likely')
    dfs_accept: float = 20.0  # dfs: an answer judged at least this ends the search (one 'sure')
    dfs_max_expansions: int = 40  # dfs: propose calls per puzzle
    answer_tokens: int = 96  # a worked answer builds the expression one step a line
    cot_tokens: int = 192
    propose_tokens: int = 64
    value_tokens: int = 96  # a worked value reply (tries line by line, then the verdict) is up to ~60 tokens
    judge_tokens: int = 96  # the judge compares the numbers and works the answer out line by line before its verdict

    def validate(self) -> None:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method {self.method!r} (choose {', '.join(METHODS)})")
        if self.search not in SEARCHES:
            problems.append(f"search {self.search!r} (choose {', '.join(SEARCHES)})")
        if min(self.breadth, self.samples, self.n_evaluate, self.dfs_max_expansions, self.propose_samples) < 1:
            problems.append("breadth, samples, n_evaluate, propose_samples and dfs_max_expansions must be >= 1")
        temps = (self.temperature, self.sc_temperature, self.propose_temperature, self.value_temperature,
                 self.value_temperature if self.judge_temperature is None else self.judge_temperature)
        if min(temps) < 0:
            problems.append("temperatures must be >= 0")
        if problems:
            raise LlmlabError("invalid reasoning config: " + "; ".join(problems))

    @property
    def label(self) -> str:
        if self.method == "cot-sc":
            return f"cot-sc(k={self.samples})"
        if self.method == "tot":
            return f"tot-{self.search}(b={self.breadth})" if self.search == "bfs" else "tot-dfs"
        return self.method


@dataclass
class Attempt:
    puzzle: Any
    method: str
    answer: str = ""  # the final answer (what is scored)
    thought: str = ""  # cot: the chain of thought behind it
    tokens: int = 0  # tokens generated for this puzzle (cached values are charged to the first puzzle asking)
    candidates: list[dict] = field(default_factory=list)  # every final answer considered, with votes/values
    tree: Tree | None = None
    error: str | None = None  # the first endpoint error met
    # Filled by score(), after the search:
    ok: bool = False
    reason: str = ""
    any_ok: bool = False  # any candidate is right (the paper's ToT metric for b final outputs)
    sample_ok: float | None = None  # cot-sc: share of samples that are right

    def to_json(self, task) -> dict:
        return {"puzzle": task.puzzle_text(self.puzzle), "method": self.method, "answer": self.answer,
                "ok": self.ok, "reason": self.reason, "any_ok": self.any_ok, "sample_ok": self.sample_ok,
                "tokens": self.tokens, "thought": self.thought, "candidates": self.candidates, "error": self.error}


# ----------------------------------------------------------------------------------------------------------
# Direct answers and self-consistency


def direct(gen, task, puzzles: Sequence, cfg: StrategyConfig, *, cot: bool) -> list[Attempt]:
    prompts = [task.cot_prompt(p) if cot else task.io_prompt(p) for p in puzzles]
    outs = gen.generate(prompts, n=1, temperature=cfg.temperature,
                        max_tokens=cfg.cot_tokens if cot else cfg.answer_tokens)
    attempts = []
    for p, (c,) in zip(puzzles, outs):
        thought, answer = task.extract_answer(c.text)
        attempts.append(Attempt(p, "cot" if cot else "io", answer, thought, c.tokens,
                                [{"answer": answer}], error=c.error))
    return attempts


def self_consistency(gen, task, puzzles: Sequence, cfg: StrategyConfig) -> list[Attempt]:
    outs = gen.generate([task.cot_prompt(p) for p in puzzles], n=cfg.samples, temperature=cfg.sc_temperature,
                        max_tokens=cfg.cot_tokens)
    attempts = []
    for p, samples in zip(puzzles, outs):
        answers = [task.extract_answer(c.text)[1] for c in samples]
        answer, candidates = majority_vote(task, answers)
        err = next((c.error for c in samples if c.error), None)
        attempts.append(Attempt(p, cfg.label, answer, "", sum(c.tokens for c in samples), candidates, error=err))
    return attempts


def majority_vote(task, answers: Sequence[str]) -> tuple[str, list[dict]]:
    """The most common answer by ``task.normalise`` (ties: the one seen first; empty answers never vote) and
    every distinct answer with its votes, most votes first. The candidates keep every sample's answer so that
    ``score`` can report the share of right samples."""
    keys = [task.normalise(a) if a else None for a in answers]
    votes = Counter(k for k in keys if k is not None)
    first = {}
    for a, k in zip(answers, keys):
        if k is not None and k not in first:
            first[k] = a
    ranked = sorted(first, key=lambda k: (-votes[k], list(first).index(k)))
    candidates = [{"answer": first[k], "votes": votes[k]} for k in ranked]
    candidates.append({"samples": list(answers)})
    return (first[ranked[0]] if ranked else ""), candidates


# ----------------------------------------------------------------------------------------------------------
# Tree of Thoughts


class _Search:
    """What BFS and DFS share: proposing children, valuing nodes (cached), writing and judging answers."""

    def __init__(self, gen, task, cfg: StrategyConfig, cache: dict | None):
        self.gen, self.task, self.cfg = gen, task, cfg
        self.cache = cache if cache is not None else {}

    def propose(self, jobs: list[tuple[Attempt, Node]]) -> list[list[Node]]:
        """One batch: ``propose_samples`` propose replies for every (attempt, node); each node's new children
        are the distinct thoughts of its replies, in the order first written."""
        if not jobs:
            return []
        outs = self.gen.generate([self.task.propose_prompt(node.state) for _, node in jobs],
                                 n=self.cfg.propose_samples, temperature=self.cfg.propose_temperature,
                                 max_tokens=self.cfg.propose_tokens)
        children = []
        for (att, node), samples in zip(jobs, outs):
            seen, kids = set(), []
            for c in samples:
                att.tokens += c.tokens
                if c.error:
                    node.error = c.error
                    att.error = att.error or c.error
                for thought, state in self.task.parse_proposals(c.text):
                    if thought not in seen:
                        seen.add(thought)
                        kids.append(att.tree.add(node, "step", thought, state))
            children.append(kids)
        return children

    def value(self, jobs: list[tuple[Attempt, Node]], prompts: list[list[dict]] | None = None,
              temperature: float | None = None, max_tokens: int | None = None) -> None:
        """One batch: the value prompts of every (attempt, node) not in the cache, ``n_evaluate`` samples each
        (at ``temperature``, default ``value_temperature``)."""
        if not jobs:
            return
        temperature = self.cfg.value_temperature if temperature is None else temperature
        prompts = prompts or [self.task.value_prompt(node.state) for _, node in jobs]
        keys = [json.dumps(p, sort_keys=True) for p in prompts]
        todo, owners = [], {}
        for (att, _), key, prompt in zip(jobs, keys, prompts):
            if key not in self.cache and key not in owners:
                owners[key] = att
                todo.append((key, prompt))
        if todo:
            greedy = temperature == 0
            outs = self.gen.generate([p for _, p in todo], n=1 if greedy else self.cfg.n_evaluate,
                                     temperature=temperature, max_tokens=max_tokens or self.cfg.value_tokens)
            for (key, _), samples in zip(todo, outs):
                att = owners[key]
                att.tokens += sum(c.tokens for c in samples)
                err = next((c.error for c in samples if c.error), None)
                if err:
                    att.error = att.error or err
                    continue  # not cached: an error is no judgement
                words = [self.task.parse_value(c.text) or "?" for c in samples]
                self.cache[key] = words * self.cfg.n_evaluate if greedy else words
        for (_, node), key in zip(jobs, keys):
            node.judgements = list(self.cache.get(key, []))
            node.value = sum(VALUE_WEIGHTS.get(w, 0.0) for w in node.judgements)

    def answer(self, jobs: list[tuple[Attempt, Node]]) -> list[Node]:
        """One batch: the final answer written from each goal node's path, then (``judge``) one batch of
        judgements. Without judging, an answer's value is its goal node's."""
        if not jobs:
            return []
        prompts = [self.task.answer_prompt(att.puzzle, [n.text for n in att.tree.path(node)]) for att, node in jobs]
        outs = self.gen.generate(prompts, n=1, temperature=0.0, max_tokens=self.cfg.answer_tokens)
        nodes = []
        for (att, node), (c,) in zip(jobs, outs):
            att.tokens += c.tokens
            if c.error:
                att.error = att.error or c.error
            ans = att.tree.add(node, "answer", self.task.extract_answer(c.text)[1])
            ans.value = node.value
            nodes.append(ans)
        if self.cfg.judge:
            self.value([(att, n) for (att, _), n in zip(jobs, nodes)],
                       [self.task.judge_prompt(att.puzzle, n.text) for (att, _), n in zip(jobs, nodes)],
                       self.cfg.judge_temperature, self.cfg.judge_tokens)
        return nodes


def _rank(nodes: list[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: -(n.value or 0.0))  # stable: ties keep the model's order


def _select(task, nodes: list[Node], breadth: int, distinct: bool) -> list[Node]:
    """The ``breadth`` best nodes; with ``distinct``, a node whose state (as the model wrote it) equals a better
    one's is passed over, so two paths to the same numbers do not take two of the b places. Goal states are
    exempt: every finished path ends in the same state, and each is a different answer."""
    kept, states = [], set()
    for n in _rank(nodes):
        if len(kept) == breadth:
            break
        if distinct and n.state in states and not task.is_goal(n.state):
            continue
        kept.append(n)
        states.add(n.state)
    return kept


def _rank_answers(att: Attempt, answers: list[Node]) -> list[Node]:
    """Answers by their judgement; ties by the values the model gave the states on their paths (summed)."""
    def path_value(n: Node) -> float:
        return sum(p.value or 0.0 for p in att.tree.path(n) if p.kind == "step")

    return sorted(answers, key=lambda n: (-(n.value or 0.0), -path_value(n)))


def _finish(att: Attempt, answers: list[Node]) -> None:
    ranked = _rank_answers(att, answers)
    att.candidates = [{"answer": n.text, "value": n.value, "node": n.id} for n in ranked]
    if ranked:
        att.answer = ranked[0].text
        ranked[0].selected = True


def tot_bfs(gen, task, puzzles: Sequence, cfg: StrategyConfig, cache: dict | None = None) -> list[Attempt]:
    """Breadth-first ToT over several puzzles in lockstep (each level: one propose batch, one value batch)."""
    s = _Search(gen, task, cfg, cache)
    attempts, frontier = [], []
    for p in puzzles:
        att = Attempt(p, cfg.label, tree=Tree(task.puzzle_text(p), cfg.label, meta={"breadth": cfg.breadth}))
        root = att.tree.add(None, "root", "", state=task.puzzle_text(p))
        root.selected = True
        attempts.append(att)
        frontier.append([root])
    depth = max((task.depth(p) for p in puzzles), default=0)
    for level in range(depth):
        jobs = [(att, n) for att, front in zip(attempts, frontier) if level < task.depth(att.puzzle) for n in front]
        kids = s.propose(jobs)
        new: dict[int, list[Node]] = {}
        for (att, _), ch in zip(jobs, kids):
            new.setdefault(id(att), []).extend(ch)
        s.value([(att, n) for att in attempts for n in new.get(id(att), [])])
        for i, att in enumerate(attempts):
            if id(att) in new:
                frontier[i] = _select(task, new[id(att)], cfg.breadth, cfg.distinct_states)
                for n in frontier[i]:
                    n.selected = True
    goal_jobs = [(att, n) for att, front in zip(attempts, frontier) for n in front
                 if n.kind == "step" and task.is_goal(n.state)]
    answers = s.answer(goal_jobs)
    by_att: dict[int, list[Node]] = {}
    for (att, _), a in zip(goal_jobs, answers):
        by_att.setdefault(id(att), []).append(a)
    for att in attempts:
        _finish(att, by_att.get(id(att), []))
    return attempts


def tot_dfs(gen, task, puzzle, cfg: StrategyConfig, cache: dict | None = None) -> Attempt:
    """Depth-first ToT with pruning and backtracking (one puzzle; each expansion: one propose call and one
    value batch for its children). Stops at the first answer the model judges ``>= dfs_accept``."""
    s = _Search(gen, task, cfg, cache)
    att = Attempt(puzzle, cfg.label, tree=Tree(task.puzzle_text(puzzle), cfg.label,
                                               meta={"prune": cfg.dfs_prune, "accept": cfg.dfs_accept}))
    root = att.tree.add(None, "root", "", state=task.puzzle_text(puzzle))
    depth = task.depth(puzzle)
    answers: list[Node] = []
    budget = {"expansions": 0, "order": 0}

    def visit(node: Node, level: int) -> Node | None:
        node.order = budget["order"]
        budget["order"] += 1
        if level == depth:
            if not task.is_goal(node.state):
                return None
            (ans,) = s.answer([(att, node)])
            answers.append(ans)
            accepted = (ans.value or 0.0) >= cfg.dfs_accept if cfg.judge else bool(ans.text)
            return ans if accepted else None
        if budget["expansions"] >= cfg.dfs_max_expansions:
            return None
        budget["expansions"] += 1
        (children,) = s.propose([(att, node)])
        s.value([(att, c) for c in children])
        for child in _rank(children):
            if (child.value or 0.0) < cfg.dfs_prune:
                break  # the rest are valued lower still: prune them
            found = visit(child, level + 1)
            if found is not None:
                return found
        return None  # nothing below here: backtrack

    found = visit(root, 0)
    att.tree.meta["expansions"] = budget["expansions"]
    if found is not None:
        for n in [root] + att.tree.path(found):
            n.selected = True
        att.candidates = [{"answer": found.text, "value": found.value, "node": found.id}]
        att.candidates += [{"answer": n.text, "value": n.value, "node": n.id} for n in _rank_answers(att, answers) if n is not found]
        att.answer = found.text
    else:
        _finish(att, answers)  # no accepted answer: the best judged one, if any was written
    return att


# ----------------------------------------------------------------------------------------------------------
# Dispatch and scoring


def solve_batch(gen, task, puzzles: Sequence, cfg: StrategyConfig, cache: dict | None = None) -> list[Attempt]:
    """Run ``cfg.method`` on ``puzzles`` (as one batch where the method allows)."""
    cfg.validate()
    if cfg.method not in getattr(task, "methods", METHODS):
        raise LlmlabError(f"task {task.name!r} supports {', '.join(task.methods)} only, not {cfg.method!r}")
    if cfg.method == "io":
        return direct(gen, task, puzzles, cfg, cot=False)
    if cfg.method == "cot":
        return direct(gen, task, puzzles, cfg, cot=True)
    if cfg.method == "cot-sc":
        return self_consistency(gen, task, puzzles, cfg)
    if cfg.search == "bfs":
        return tot_bfs(gen, task, puzzles, cfg, cache)
    return [tot_dfs(gen, task, p, cfg, cache) for p in puzzles]


def score(task, attempts: Sequence[Attempt]) -> None:
    """The exact checker on the final answers, after the search: ``ok`` (the answer), ``any_ok`` (any
    candidate), ``sample_ok`` (cot-sc's share of right samples); answer nodes of trees get ``ok`` too."""
    for att in attempts:
        verdict = task.check(att.puzzle, att.answer) if att.answer else None
        att.ok = bool(verdict and verdict.ok)
        att.reason = "" if att.ok else (verdict.reason if verdict else "no answer")
        oks = []
        for c in att.candidates:
            if "answer" in c:
                c["ok"] = bool(c["answer"]) and task.check(att.puzzle, c["answer"]).ok
                oks.append(c["ok"])
            if "samples" in c:
                right = [bool(a) and task.check(att.puzzle, a).ok for a in c["samples"]]
                att.sample_ok = sum(right) / len(right) if right else 0.0
        att.any_ok = att.ok or any(oks)
        if att.tree is not None:
            for n in att.tree.nodes:
                if n.kind == "answer":
                    n.ok = bool(n.text) and task.check(att.puzzle, n.text).ok
