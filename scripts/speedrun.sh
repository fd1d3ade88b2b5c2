#!/usr/bin/env bash
# The main job: raw text -> tokenizer -> base model -> assistant -> preference tuning -> report card.
#   scripts/speedrun.sh                 # the bundled Shakespeare corpus on this machine's CPU/GPUs (~28 min on 2 cores)
#   scripts/speedrun.sh --quick         # a few minutes, for a first look
#   scripts/speedrun.sh --data DIR --out runs/mine      # your own text; see `llmlab speedrun --help`
# Creates .venv on first use and installs llmlab into it (same as scripts/test.sh, without the test extras).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
exec llmlab speedrun "$@"
