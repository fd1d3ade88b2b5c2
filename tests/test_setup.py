"""The install recipe: every dependency pyproject.toml names (with every extra) has a tested version pinned in
constraints.txt, which scripts/_env.sh installs with; torch is the one left to _env.sh (CPU wheel, or the
user's CUDA build)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    """The distributions pyproject.toml names, core and every extra (canonical names)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for deps in project["optional-dependencies"].values() for r in deps]
    return {_canon(re.match(r"\s*([A-Za-z0-9_.\-]+)", r).group(1)) for r in reqs}


def _pins() -> dict[str, str]:
    """constraints.txt as {canonical name: version}; every line must be an exact pin."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_canon(name)] = version
    return pins


def test_every_dependency_is_pinned():
    names = _declared() - {"torch"}
    pins = _pins()
    missing = sorted(names - set(pins))
    assert not missing, f"not pinned in constraints.txt (run scripts/lock.py): {missing}"
    assert "torch" not in pins, "torch must stay out of constraints.txt (_env.sh installs it; CUDA users keep theirs)"


def test_pins_satisfy_each_other_and_match_the_environment():
    """Each pinned version meets every requirement on it (extras included), as installed here from the pins.

    A pin that some package refuses makes pip's resolver backtrack until it gives up (resolution-too-deep),
    which is how CI once failed before running a test: python-dateutil 4 against typepy[datetime]'s ``<3``.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("llmlab_lock", ROOT / "scripts" / "lock.py")
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    try:
        installed = lock.closure(allow_missing=True)
    except SystemExit as e:  # closure printed which requirement is unmet
        raise AssertionError("installed packages do not satisfy each other (see stderr)") from e
    pins = _pins()
    differ = {k: (v, pins.get(k)) for k, v in installed.items() if pins.get(k) != v}
    assert not differ, f"installed vs constraints.txt (run scripts/lock.py): {differ}"


def test_build_backend_understands_spdx_license():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"
    req = next(r for r in data["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(re.search(r">=(\d+)", req).group(1)) >= 77


def test_every_third_party_import_in_the_package_is_declared():
    """A module that llmlab imports comes from a distribution pyproject.toml names (core or an extra).

    Packages installed by hand into a developer's venv hide a missing declaration until a fresh machine runs:
    bm25s and pypdf (retrieval) were once imported but never declared, and CI's fresh install failed on them.
    """
    import ast
    import sys
    from importlib import metadata

    declared = _declared()
    provides = metadata.packages_distributions()
    undeclared = {}
    for path in sorted((ROOT / "src" / "llmlab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "llmlab":
                    continue
                dists = {_canon(d) for d in provides.get(top, [top])}
                if not dists & declared:
                    undeclared.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
