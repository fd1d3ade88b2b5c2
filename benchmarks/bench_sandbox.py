"""The Python sandbox's per-call overhead: a sandboxed run vs the same program in a bare subprocess.

    .venv/bin/python benchmarks/bench_sandbox.py                  # every backend that works here, 20 calls each
    .venv/bin/python benchmarks/bench_sandbox.py --repeats 50 --code "import json; print(json.dumps([1]))"

For each backend (bwrap, unshare, and the unsandboxed ``none`` for reference) it runs the same one-line
program ``--repeats`` times through ``run_python`` and, alternating with it, as ``python -I -c CODE`` in a plain
``subprocess.run`` (the peer: what calling an interpreter costs at all). It prints the median and best wall
time of each and the difference, which is what isolation adds per call: the namespaces and mounts, the second
interpreter start (``sandbox_boot.py`` runs first, then execs the user's Python) and the teardown wait. The
machine is shared; the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

from llmlab.tools import sandbox as sb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--code", default="print(6 * 7)")
    args = ap.parse_args()

    exe, _ = sb._interpreter(None)
    backends = [b for b in sb.BACKENDS if sb.probe(b) is None] + ["none"]
    print(f"load average {os.getloadavg()[0]:.2f}; interpreter {exe}; program {args.code!r}")
    for backend in backends:
        cfg = sb.SandboxConfig(backend=backend, allow_unsandboxed=backend == "none")
        ours, bare = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            r = sb.run_python(args.code, cfg)
            ours.append(time.perf_counter() - t)
            assert r.exit_code == 0, r
            t = time.perf_counter()
            subprocess.run([exe, "-I", "-c", args.code], capture_output=True, check=True)
            bare.append(time.perf_counter() - t)
        mo, mb = statistics.median(ours), statistics.median(bare)
        print(f"{backend:8s} sandboxed median {mo * 1e3:6.1f} ms (best {min(ours) * 1e3:5.1f})   "
              f"bare subprocess median {mb * 1e3:5.1f} ms (best {min(bare) * 1e3:5.1f})   "
              f"overhead {(mo - mb) * 1e3:+6.1f} ms ({mo / mb:.1f}x)")


if __name__ == "__main__":
    main()
