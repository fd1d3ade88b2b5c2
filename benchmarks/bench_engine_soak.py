"""Soak: thousands of requests through ONE open ``Generation`` (what a server's scheduler does for days).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_engine_soak.py               # 2,000 requests
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_engine_soak.py --requests 500 --report-every 50

A random model (2 layers, d 64, context 256, vocab 512). Before every step a request joins with probability
``--join-prob`` (prompt of 5-40 random tokens, 10-60 new tokens, sampled at temperature 1, eos ignored), so
~18 rows are live at any time and the batch never drains. Every ``--report-every`` finished requests it
prints: live rows, the KV cache's size (rows x slots of the allocated cache, and its MB), the requests the
generation still holds, the process's resident memory, and the mean wall and CPU time per step over the
window (on a shared machine the CPU time is the steadier of the two). The
claim (issue 26): after warm-up, cache size, resident memory and time per step stay flat.

Measured 2026-12-05 (2 shared cores, 1 thread), 2,000 requests: the cache block is 42 rows x 121 slots (5 MB)
from the 500th request on, the generation holds only the live requests, RSS 243.9 -> 246.5 MB, 1.5-1.7 ms of
CPU per step throughout; 13.2 s in all. The engine before (``--old``): cache 2 x 4,017 slots at the end and
growing, all 2,000 outputs held, RSS 263 -> 437 MB, 7.8 -> 65 ms per step; 124.5 s.

Runs against the engine of this checkout; ``--old`` reads the same numbers off an engine without request
retirement (it keeps every output; the cache shape is then ``gen.cache``'s), for a before/after.
"""

from __future__ import annotations

import argparse
import random
import resource
import time


def rss_mb() -> float:
    """Resident set size now (MB), from /proc (ru_maxrss would give the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--join-prob", type=float, default=0.5)
    ap.add_argument("--report-every", type=int, default=125)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--old", action="store_true", help="the engine has no keep_finished / kv_slots (before)")
    args = ap.parse_args()

    import torch

    from llmlab.infer.engine import Engine
    from llmlab.infer.sampling import SamplingParams
    from llmlab.model.gpt import GPT, ModelConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    V = 512
    model = GPT(ModelConfig(vocab_size=V, n_layer=2, n_head=4, n_kv_head=4, d_model=64, max_seq_len=256)).eval()
    engine = Engine(model)

    def request():
        prompt = [rng.randrange(V) for _ in range(rng.randint(5, 40))]
        return prompt, SamplingParams(temperature=1.0, max_new_tokens=rng.randint(10, 60), ignore_eos=True)

    gen = engine.open(keep_finished=False) if not args.old else None
    submitted = finished = 0
    steps_in_window, t_window, cpu_window = 0, 0.0, 0.0
    print(f"{'done':>6} {'live':>5} {'cache rows x slots':>19} {'cache MB':>9} {'held':>6} {'RSS MB':>8} "
          f"{'ms/step':>8} {'CPU ms/step':>11}")
    t_start = time.perf_counter()
    next_report = args.report_every
    while finished < args.requests:
        t0, c0 = time.perf_counter(), time.process_time()
        events = []
        if submitted < args.requests and (rng.random() < args.join_prob or gen is None or gen.done):
            p, sp = request()
            if gen is None:
                gen = engine.start([p], sp)
                events = gen.first_events
            else:
                events = gen.add([p], sp)
            submitted += 1
        if not gen.done:
            events = events + gen.step()
        t_window += time.perf_counter() - t0
        cpu_window += time.process_time() - c0
        steps_in_window += 1
        finished += sum(1 for e in events if e.finish_reason is not None)
        if finished >= next_report:
            next_report += args.report_every
            if args.old:
                k = gen.cache.k
                rows, slots = k.shape[1], k.shape[3]
                mb = 2 * k.numel() * k.element_size() / 2**20
                held = len(gen.outputs_)
            else:
                rows, slots = gen.kv_shape()
                mb = gen.kv_bytes() / 2**20
                held = len(gen.outputs())
            live = len(gen.live)
            print(f"{finished:6d} {live:5d} {rows:>8d} x {slots:<8d} {mb:9.2f} {held:6d} {rss_mb():8.1f} "
                  f"{1000 * t_window / steps_in_window:8.2f} {1000 * cpu_window / steps_in_window:11.2f}", flush=True)
            steps_in_window, t_window, cpu_window = 0, 0.0, 0.0
    print(f"{finished} requests in {time.perf_counter() - t_start:.1f} s "
          f"({gen.stats.decode_steps} decode steps, {gen.stats.decode_tokens_per_sec:.0f} decode tok/s)")


if __name__ == "__main__":
    main()
