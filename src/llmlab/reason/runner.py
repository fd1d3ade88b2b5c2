"""Run a strategy over a file of puzzles: read and validate the puzzles, solve them in batches with a progress
bar, score the answers, save the trees, and summarise.

    llmlab reason --model runs/game24 --task game24 --method tot --breadth 5 --puzzles test.txt --json

    from llmlab.reason.runner import read_puzzles, run_puzzles
    puzzles, skipped = read_puzzles(task, "test.txt")          # or the paper's CSV, with ranks=(901, 1000)
    report = run_puzzles(gen, task, puzzles, StrategyConfig(method="cot-sc", samples=10), trees_dir="trees/")
    report["success_rate"], report["tokens_per_puzzle"], report["results"][0]

A puzzle file holds one puzzle a line (``4 9 10 13``; blank lines and ``#`` comments ignored) or is a CSV
with a ``Puzzles`` column (the paper's ``game24.csv``; ``ranks`` picks rows by its ``Rank`` column). A line
that is not a puzzle, or has a number out of range, is skipped and counted, with the first few reasons on
stderr; the rest of the run goes on. Puzzles whose search met an endpoint error count as failures and are
counted under ``errors``.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Sequence

from llmlab.errors import LlmlabError
from llmlab.reason.strategies import StrategyConfig, score, solve_batch
from llmlab.reason.tree import draw_tree

REPORT_FORMAT = "llmlab-reason-report"
REPORT_VERSION = 1


def read_puzzles(task, path, ranks: tuple[int, int] | None = None) -> tuple[list, list[str]]:
    """``(puzzles, skipped)``: the valid puzzles of a file, and one ``file:line: reason`` per skipped line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LlmlabError(f"{path}: puzzle file not found") from None
    except UnicodeDecodeError:
        raise LlmlabError(f"{path}: not UTF-8 text") from None
    lines = text.splitlines()
    puzzles, skipped = [], []
    if lines and "Puzzles" in lines[0].split(","):
        rows = csv.DictReader(lines)
        for lineno, row in enumerate(rows, start=2):
            try:
                rank = int(row.get("Rank") or 0)
            except ValueError:
                rank = 0
            if ranks is not None and not ranks[0] <= rank <= ranks[1]:
                continue
            _take(task, row.get("Puzzles") or "", f"{path}:{lineno}", puzzles, skipped)
    else:
        if ranks is not None:
            raise LlmlabError(f"{path}: --ranks needs the CSV with 'Rank' and 'Puzzles' columns")
        for lineno, line in enumerate(lines, start=1):
            line = line.split("#", 1)[0].strip()
            if line:
                _take(task, line, f"{path}:{lineno}", puzzles, skipped)
    return puzzles, skipped


def _take(task, text: str, where: str, puzzles: list, skipped: list) -> None:
    try:
        puzzles.append(task.parse_puzzle(text))
    except LlmlabError as e:
        skipped.append(f"{where}: {e}")


def run_puzzles(gen, task, puzzles: Sequence, cfg: StrategyConfig, *, batch: int = 10, trees_dir=None,
                draw: int = 1, progress: bool | None = None, log=None) -> dict:
    """Solve every puzzle (``batch`` at a time), score the answers, save each ToT tree as JSON under
    ``trees_dir`` (and the first ``draw`` as PNG); returns the report (see the module docstring)."""
    cfg.validate()
    if not puzzles:
        raise LlmlabError("no puzzles to solve")
    from tqdm import tqdm

    bar = tqdm(total=len(puzzles), desc=f"{task.name} {cfg.label}", unit="puzzle", file=sys.stderr,
               disable=not (progress if progress is not None else sys.stderr.isatty()), dynamic_ncols=True)
    cache: dict = {}
    attempts, t0, solved = [], time.perf_counter(), 0
    step = 1 if (cfg.method == "tot" and cfg.search == "dfs") else max(1, batch)
    for start in range(0, len(puzzles), step):
        chunk = solve_batch(gen, task, puzzles[start : start + step], cfg, cache)
        score(task, chunk)
        attempts += chunk
        solved += sum(a.ok for a in chunk)
        bar.update(len(chunk))
        bar.set_postfix(success=f"{solved / len(attempts):.1%}")
    bar.close()
    seconds = time.perf_counter() - t0
    if trees_dir is not None:
        trees_dir = Path(trees_dir)
        drawn = 0
        for i, att in enumerate(attempts):
            if att.tree is None:
                continue
            name = f"{i:04d}_{task.puzzle_text(att.puzzle).replace(' ', '_')}"
            att.tree.save(trees_dir / f"{name}.json")
            if drawn < draw:
                draw_tree(att.tree, trees_dir / f"{name}.png")
                drawn += 1
    n = len(attempts)
    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "task": task.name, "method": cfg.label,
        "model": getattr(gen, "name", "?"), "config": _config(cfg), "n": n,
        "success_rate": sum(a.ok for a in attempts) / n,
        "any_rate": sum(a.any_ok for a in attempts) / n,
        "sample_success_rate": (sum(a.sample_ok for a in attempts) / n
                                if all(a.sample_ok is not None for a in attempts) else None),
        "tokens_per_puzzle": sum(a.tokens for a in attempts) / n,
        "errors": sum(a.error is not None for a in attempts), "seconds": round(seconds, 2),
        "results": [a.to_json(task) for a in attempts],
    }


def _config(cfg: StrategyConfig) -> dict:
    from llmlab.utils.config import config_to_dict

    return config_to_dict(cfg)


def summary_line(report: dict, skipped: int = 0) -> str:
    line = (f"{report['task']} {report['method']}: {report['success_rate']:.1%} solved "
            f"({round(report['success_rate'] * report['n'])}/{report['n']})")
    if report["method"].startswith("tot-bfs") and report["any_rate"] != report["success_rate"]:
        line += f", {report['any_rate']:.1%} with any of the final answers right"
    if report.get("sample_success_rate") is not None:
        line += f", {report['sample_success_rate']:.1%} of samples right"
    line += f"; {report['tokens_per_puzzle']:.0f} tokens generated per puzzle"
    if skipped:
        line += f"; {skipped} line(s) skipped"
    if report["errors"]:
        line += f"; {report['errors']} puzzle(s) met endpoint errors"
    return line
