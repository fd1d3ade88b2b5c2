# Sourced by the scripts in this folder: create (once) and activate the project's virtual environment, and
# install llmlab with the extras named in LLMLAB_EXTRAS -- idempotently (a stamp of pyproject.toml skips the
# install when nothing changed).
#
# torch: on a machine without torch, pip is told `torch==2.13.0` (the CPU build; an unpinned requirement would
# pull a multi-GB CUDA build). Where the system Python already has a CUDA torch, the venv sees it
# (--system-site-packages) and the user's torch is kept.
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
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16) extras=$EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "installing llmlab into $VENV (extras: ${EXTRAS:-none}) ..." >&2
  python -m pip install -q --upgrade pip >&2
  if ! python -c 'import torch' 2>/dev/null; then
    python -m pip install -q "torch==2.13.0" >&2
  fi
  SPEC="$ROOT"
  [ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
  python -m pip install -q -e "$SPEC" >&2
  echo "$WANT" > "$STAMP"
fi
