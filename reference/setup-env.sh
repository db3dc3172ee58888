#!/usr/bin/env bash
# Creates (once) the Python virtual environment of the PyTorch reference scripts from
# reference/requirements.txt. Not needed to build, test or run anything else: CI never uses it.
#
#   reference/setup-env.sh               # creates $TORCH_ENV (default: .venv-reference in the repo)
#   reference/setup-env.sh --python      # prints the environment's python, e.g. for
#   $(reference/setup-env.sh --python) reference/ops/make_op_goldens.py
#   export TORCH_PYTHON=$(reference/setup-env.sh --python)   # what `bench` runs PyTorch with
#
# Needs python3 (3.10 or newer) with the venv module and access to PyPI; the PyPI torch wheel is
# several GB. Set PIP_INDEX_URL=https://download.pytorch.org/whl/cpu for a smaller CPU-only torch
# (same version numbers, plus a "+cpu" tag).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ENV_DIR="${TORCH_ENV:-$ROOT/.venv-reference}"
REQ="$ROOT/reference/requirements.txt"
if [ "${1:-}" = "--python" ]; then echo "$ENV_DIR/bin/python"; exit 0; fi

# Ready when every pinned package is installed at its pinned version.
if [ -x "$ENV_DIR/bin/python" ] && "$ENV_DIR/bin/python" - "$REQ" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        if version(name).split("+")[0] != want:
            sys.exit(1)
PY
then
  echo "ready: $ENV_DIR/bin/python"
  exit 0
fi

python3 -m venv "$ENV_DIR"
"$ENV_DIR/bin/pip" install --disable-pip-version-check -q -r "$REQ"
echo "ready: $ENV_DIR/bin/python ($("$ENV_DIR/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
