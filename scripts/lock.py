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


def closure() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = list(project["dependencies"])
    for deps in project.get("optional-dependencies", {}).values():
        roots.extend(deps)
    todo = [_name(r)[:2] for r in roots]
    seen: dict[str, str] = {}
    while todo:
        name, extras = todo.pop()
        key = _canon(name)
        if SKIP.match(key) or key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            print(f"lock: {name} is not installed here; install every extra before locking", file=sys.stderr)
            raise SystemExit(2)
        seen[key] = dist.version
        for req in dist.requires or []:
            sub, sub_extras, marker = _name(req)
            if _marker_ok(marker, extras):
                todo.append((sub, sub_extras))
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
