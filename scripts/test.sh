#!/usr/bin/env bash
# Run llmlab's test suite (installs what it needs into .venv first). Extra arguments go to pytest:
#   scripts/test.sh                 # everything CI runs
#   scripts/test.sh -m "not slow"   # the quick tier
#   scripts/test.sh tests/tokenizer -x
set -euo pipefail
export LLMLAB_EXTRAS="${LLMLAB_EXTRAS:-dev,hf,gguf,lmeval,llamacpp}"
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/_system_deps.sh"
cd "$ROOT"
# Two CPU cores in CI: keep torch from oversubscribing them when pytest runs subprocesses.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
set +e
python -m pytest -q "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
exit $rc
