"""Device names: auto, cpu, cuda:N, and one-line errors for ones this machine lacks (no GPU needed).

    .venv/bin/pytest tests/utils/test_device.py -q
"""

import sys

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.utils.device import resolve_device


def test_names_and_errors(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(LlmlabError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(LlmlabError, match="CUDA is not available"):
        resolve_device("cuda")


def test_more_torchrun_processes_than_gpus_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert resolve_device("auto") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(LlmlabError, match=r"cuda:1 requested but this machine has 1 GPU\(s\) \(torchrun's local "
                       r"rank 1: start at most 1 processes per node, or use --device cpu\)"):
        resolve_device("auto")
    with pytest.raises(LlmlabError, match="cuda:3 requested"):
        resolve_device("cuda:3")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_stops_page_faults_on_reallocated_blocks():
    import resource

    import torch

    from llmlab.utils.device import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("not glibc")

    def step():  # a training step's pattern: several large activations alive at once, then all freed
        xs = [torch.empty(4 * 2**20) for _ in range(6)]  # 6 x 16 MB
        for x in xs:
            x.fill_(1.0)

    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    touched = 6 * 16 * 2**20 // resource.getpagesize()  # 24,576 pages of 4 KiB
    # By default glibc hands the freed 96 MB back to the OS (its trim threshold is at most 64 MB) and the next
    # step faults in every page again. Late in the suite the heap is fragmented by earlier tests, and CI once saw
    # one 16 MB block (4,096 pages) land in fresh memory; allow up to a quarter of the pages for that.
    assert faults < touched // 4, (faults, touched)
