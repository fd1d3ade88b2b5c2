#!/usr/bin/env bash
# The main job on the bundled corpus. For now: the data pipeline's standard split.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
llmlab data split --out runs/speedrun/data
