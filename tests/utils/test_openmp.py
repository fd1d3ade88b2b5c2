"""``utils.openmp.passive_wait``: OMP_WAIT_POLICY=PASSIVE for the inference commands, set only where the user
chose no policy and only before torch is imported (OpenMP reads it once); checked in fresh interpreters.

    .venv/bin/pytest tests/utils/test_openmp.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys

CODE = ("import os, sys; from llmlab.utils.openmp import passive_wait; {pre}ok = passive_wait(); "
        "print(os.environ.get('OMP_WAIT_POLICY'), ok)")


def run(pre: str = "", **env) -> str:
    e = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    return subprocess.run([sys.executable, "-c", CODE.format(pre=pre)], env=e, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_passive_unless_chosen_or_too_late():
    assert run() == "PASSIVE True"
    assert run(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"  # the user's choice stands
    assert run(pre="import torch; ") == "None False"  # torch already loaded OpenMP: nothing to gain


def test_generate_sets_it_before_torch(tmp_path):
    """The generate handler calls it before anything imports torch (a missing run folder fails after it)."""
    code = ("import os, sys; from llmlab.cli import main; rc = main(['generate', '--model', sys.argv[1], "
            "'--prompt', 'x']); print(rc, os.environ.get('OMP_WAIT_POLICY'))")
    e = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "none")], env=e, capture_output=True,
                         text=True).stdout.strip().splitlines()
    assert out[-1] == "2 PASSIVE"
