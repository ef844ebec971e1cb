#!/usr/bin/env bash
# Makes sure the services the tests talk to are up (PostgreSQL, NATS JetStream) and that
# Debian's chromium is installed for the browser tests. Idempotent; quiet when all is well.
set -u

wait_port() {  # host port seconds
  local i
  for i in $(seq 1 "$3"); do
    (echo > "/dev/tcp/$1/$2") >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_port 127.0.0.1 5432 30 || echo "warning: PostgreSQL did not come up on 127.0.0.1:5432"
fi

if ! wait_port 127.0.0.1 4222 1; then
  echo "starting NATS with JetStream"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  wait_port 127.0.0.1 4222 30 || echo "warning: NATS did not come up on 127.0.0.1:4222"
fi

if [ "${NEED_CHROMIUM:-0}" = "1" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian chromium for the browser tests"
  (apt-get install -y chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y chromium >/dev/null)) \
    || echo "warning: could not install chromium; browser tests will fail"
fi
if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian prometheus (promtool) for the deploy tests"
  (apt-get install -y prometheus >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y prometheus >/dev/null)) \
    || echo "warning: could not install prometheus; the Prometheus deploy tests will skip"
fi
exit 0
