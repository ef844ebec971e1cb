#!/usr/bin/env bash
# Times `make demo` the way a new user meets it: a clean clone, an empty package cache
# (pip's and uv's), until the dashboard answers GET / on 127.0.0.1:8000; then stops the demo.
#   scripts/time-demo.sh [FILE...]   FILEs (paths relative to the repo) are copied from the
#                                    work tree into the clone first, to time uncommitted changes.
# Env: DEMO_CLONE (default /tmp/democlone), DEMO_TIMEOUT seconds (default 300).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
clone="${DEMO_CLONE:-/tmp/democlone}"
timeout="${DEMO_TIMEOUT:-300}"
url="http://127.0.0.1:8000/"

if curl -fs -o /dev/null "$url"; then
  echo "something already answers on $url; stop it first" >&2
  exit 2
fi
rm -rf "$clone"
git clone -q "$repo" "$clone"
for f in "$@"; do
  mkdir -p "$clone/$(dirname "$f")"
  cp -p "$repo/$f" "$clone/$f"
done
cache="$(mktemp -d)"
log="$clone/demo.log"

start=${EPOCHREALTIME/./}  # µs
cd "$clone"
# own process group, so that stopping it stops make, the demo and nothing else
PIP_CACHE_DIR="$cache" UV_CACHE_DIR="$cache" setsid make demo >"$log" 2>&1 &
pid=$!
stop() {  # SIGTERM to the demo's process group, wait for it to finish, remove what it wrote
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  local data
  data="$(sed -n 's/^tradelog demo: simulator writing to //p' "$log")"
  case "$data" in /tmp/tradelog-demo-*) rm -rf "$data" ;; esac
  rm -rf "$cache"
}
trap stop EXIT

secs() { printf '%d.%01d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }
venv_at="" installed_at=""
while :; do
  now=$((${EPOCHREALTIME/./} - start))
  [ -z "$venv_at" ] && [ -x .venv/bin/python ] && venv_at="$now"
  [ -z "$installed_at" ] && [ -e .venv/.runtime-stamp ] && installed_at="$now"
  if curl -fs -o /dev/null "$url"; then
    up_at="$now"
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "make demo exited before the dashboard came up:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [ "$now" -gt $((timeout * 1000000)) ]; then
    echo "dashboard not up after ${timeout}s" >&2
    exit 1
  fi
  sleep 0.1
done
printf 'venv created   %6s s\n' "$(secs "${venv_at:-0}")"
printf 'installed      %6s s\n' "$(secs "${installed_at:-0}")"
printf 'dashboard up   %6s s  (make demo, clean clone, empty cache; load: %s)\n' \
  "$(secs "$up_at")" "$(cut -d' ' -f1-3 /proc/loadavg)"
