# Sourced by the scripts in this folder: create (once) and activate the project's virtual environment, and
# install llmlab with the extras named in LLMLAB_EXTRAS -- idempotently (a stamp of pyproject.toml and
# constraints.txt skips the install when nothing changed).
#
# Versions: every package is installed at the version in constraints.txt (written by scripts/lock.py from
# the environment the test suite passed in), so a fresh machine gets what was tested.
#
# torch: on a machine without torch, pip is told `torch==2.13.0` (the CPU build; an unpinned requirement would
# pull a multi-GB CUDA build). Where the system Python already has a CUDA torch, the venv sees it
# (--system-site-packages) and the user's torch is kept.
#
# llama-cpp-python (extra `llamacpp`) compiles llama.cpp from source: it is installed in its own step, and if
# that fails only the tests and benchmarks that compare with llama.cpp skip (with a message saying so).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LLMLAB_VENV:-$ROOT/.venv}"
EXTRAS="${LLMLAB_EXTRAS:-}"
PY="$(command -v python3.11 || command -v python3)"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "llmlab needs Python >= 3.11 (found $("$PY" --version))" >&2; exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  SITE=""
  if "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    SITE="--system-site-packages"  # keep the user's CUDA torch
  fi
  "$PY" -m venv $SITE "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
STAMP="$VENV/.llmlab-install-stamp"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16) extras=$EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "installing llmlab into $VENV (extras: ${EXTRAS:-none}) ..." >&2
  python -m pip install -q --upgrade pip >&2
  if ! python -c 'import torch' 2>/dev/null; then
    python -m pip install -q "torch==2.13.0" >&2
  fi
  # The llama.cpp binding gets its own step (below); everything else in one resolve.
  MAIN_EXTRAS="$(echo "$EXTRAS" | tr ',' '\n' | grep -v '^llamacpp$' | paste -sd, - || true)"
  SPEC="$ROOT"
  [ -n "$MAIN_EXTRAS" ] && SPEC="$ROOT[$MAIN_EXTRAS]"
  python -m pip install -q -c "$ROOT/constraints.txt" -e "$SPEC" >&2
  if echo ",$EXTRAS," | grep -q ',llamacpp,'; then
    if ! python -c 'import llama_cpp' 2>/dev/null; then
      echo "building llama-cpp-python (compiles llama.cpp; a few minutes) ..." >&2
      if ! python -m pip install -q -c "$ROOT/constraints.txt" "llama-cpp-python" >&2; then
        echo "warning: llama-cpp-python did not build; the tests that compare with llama.cpp will skip" >&2
      fi
    fi
  fi
  echo "$WANT" > "$STAMP"
fi
