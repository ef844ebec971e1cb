#!/usr/bin/env bash
# Creates .venv if missing and installs the project into it (editable), every package pinned
# by requirements.lock (used as constraints):
#   scripts/install.sh        the runtime dependencies (what `make demo` needs)
#   scripts/install.sh dev    the runtime and the dev tools (what `make test` needs)
# Installs with uv (itself from PyPI, pinned by the lock): on a fresh machine it downloads in
# parallel and, for the runtime, skips byte-compiling: several times faster than pip
# (docs/adr/0009-uv-installer.md). `dev` compiles the whole venv, as pip did, since the tests
# start many processes. If uv cannot be installed or its install fails, pip does the same
# install, as before uv.
# Env: PYTHON (default python3) creates the venv; TRADELOG_INSTALLER=pip skips uv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
BIN="$VENV/bin"
target=.
compile=()
case "${1:-}" in
  "") ;;
  dev) target='.[dev]' compile=(--compile-bytecode) ;;
  *) echo "usage: $0 [dev]" >&2; exit 2 ;;
esac
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

quiet() {  # runs "$@" with its output kept in $log, shown only if it fails
  "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
}

ensure_pip() {
  [ -x "$BIN/pip" ] || quiet "$BIN/python" -m ensurepip --default-pip
}

# uv into the venv: with the pip of $PYTHON (no pip in the venv needed), else the venv's own
bootstrap_uv() {
  [ -x "$BIN/uv" ] && return 0
  quiet "${PYTHON:-python3}" -m pip --python "$BIN/python" install --disable-pip-version-check \
    --no-compile -c requirements.lock uv && return 0
  ensure_pip && quiet "$BIN/pip" install --disable-pip-version-check --no-compile \
    -c requirements.lock uv
}

if [ ! -x "$BIN/python" ]; then
  # without pip: uv installs it below (pip's own bootstrap takes seconds)
  "${PYTHON:-python3}" -m venv --without-pip "$VENV"
fi

extra=()  # a venv made here has no pip: uv adds it, for `make lock` and for users
[ -x "$BIN/pip" ] || extra=(pip)
if [ "${TRADELOG_INSTALLER:-uv}" = uv ] && bootstrap_uv \
  && quiet "$BIN/uv" pip install --python "$BIN/python" "${compile[@]}" -c requirements.lock \
    -e "$target" "${extra[@]}"; then
  exit 0
fi
[ "${TRADELOG_INSTALLER:-uv}" = uv ] && echo "install.sh: uv failed; installing with pip" >&2
ensure_pip
"$BIN/pip" install -q --disable-pip-version-check -c requirements.lock -e "$target"
