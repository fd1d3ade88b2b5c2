"""Subprocess for test_resume: ``python resume_worker.py ARGS... [--kill-at N]`` runs ``llmlab pretrain ARGS``
and, with --kill-at, SIGKILLs itself inside the loss function of step N (after an earlier checkpoint), as an
out-of-memory killer or a pulled plug would: no handler runs, nothing is flushed."""

import os
import signal
import sys

import llmlab.train.pretrain as pretrain_mod
from llmlab.cli import main

argv = sys.argv[1:]
if "--kill-at" in argv:
    i = argv.index("--kill-at")
    kill_at = int(argv[i + 1])
    del argv[i : i + 2]
    inner, calls = pretrain_mod.cross_entropy_loss, []

    def loss_then_die(model, batch):
        calls.append(1)
        if len(calls) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return inner(model, batch)

    pretrain_mod.cross_entropy_loss = loss_then_die
sys.exit(main(argv))
