#!/usr/bin/env bash
# Sets up a local virtual environment (.venv) and runs one of the project's jobs.
#   scripts/run.sh demo   - the end-to-end demo
#   scripts/run.sh test   - the whole test suite
# Torch: the CPU build 2.13.0 is installed first when no torch is present, so that the open
# requirement in pyproject.toml does not pull the CUDA build; set TZ_TORCH_SPEC to choose another.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-test}"; shift || true
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "${TZ_TORCH_SPEC:-torch==2.13.0}"
fi
stamp=.venv/.tz-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VPY" -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
case "$job" in
  demo) exec "$VPY" examples/demo.py "$@" ;;
  test) exec "$VPY" -m pytest -q -n "${TZ_TEST_WORKERS:-2}" "$@" ;;
  *) echo "usage: scripts/run.sh demo|test" >&2; exit 2 ;;
esac
