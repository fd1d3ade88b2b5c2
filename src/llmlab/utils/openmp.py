"""OpenMP's waiting policy for the inference commands: passive unless the user chose one.

    from llmlab.utils.openmp import passive_wait
    passive_wait()        # before torch is imported (the generate / next / chat / serve handlers call it)

Why: PyTorch's OpenMP threads spin between parallel regions by default. At batch-1 decode most of a step is
one-row matrix products that MKL runs on one thread anyway, and the parallel regions between them (attention,
copies) are tiny; on a shared machine each region then waits for the other threads to be scheduled, and their
spinning takes CPU from everyone. Measured on the 2-core VM at load ~5 (135M model, f32, docs/LOG.md): 2 threads
3.6-4.2 tok/s and 123-159 CPU ms per token with spinning, 12.6-12.9 tok/s and 38.9 ms passive (1 thread: 12.3-15.6
tok/s, 38.4-40.7 ms either way). OpenMP reads the variable once, when torch loads it, so this does nothing once
torch is imported (tests, the Python API: set ``OMP_WAIT_POLICY=PASSIVE`` in the environment there). Training
keeps the default (its regions are large; docs/LOG.md measured 1 thread best there anyway).
"""

from __future__ import annotations

import os
import sys


def passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` if the environment has no policy and torch is not imported yet; returns
    whether the policy in force for this process (and processes it starts) is now passive."""
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
