"""The install recipe: every dependency pyproject.toml names (with every extra) has a tested version pinned in
constraints.txt, which scripts/_env.sh installs with; torch is the one left to _env.sh (CPU wheel, or the
user's CUDA build)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for deps in project["optional-dependencies"].values() for r in deps]
    names = {_canon(re.match(r"\s*([A-Za-z0-9_.\-]+)", r).group(1)) for r in reqs} - {"torch"}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_canon(name)] = version
    missing = sorted(names - set(pins))
    assert not missing, f"not pinned in constraints.txt (run scripts/lock.py): {missing}"
    assert "torch" not in pins, "torch must stay out of constraints.txt (_env.sh installs it; CUDA users keep theirs)"


def test_build_backend_understands_spdx_license():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"
    req = next(r for r in data["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(re.search(r">=(\d+)", req).group(1)) >= 77
