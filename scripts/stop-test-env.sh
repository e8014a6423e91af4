#!/usr/bin/env bash
# Stop the dockerd that scripts/test-env.sh started (its pid is in
# /tmp/opsmon-dockerd.pid). A dockerd started any other way is left alone.
set -euo pipefail

PIDFILE=/tmp/opsmon-dockerd.pid

if [[ ! -s $PIDFILE ]]; then
    echo "stop-test-env: no $PIDFILE: nothing to stop"
    exit 0
fi
pid=$(cat "$PIDFILE")
if ! [[ $pid =~ ^[0-9]+$ ]]; then
    echo "stop-test-env: $PIDFILE does not hold a pid; removing it" >&2
    rm -f "$PIDFILE"
    exit 0
fi
# The pid must still be alive and still be a dockerd (pids get reused).
if ! kill -0 "$pid" 2>/dev/null || [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != dockerd ]]; then
    echo "stop-test-env: dockerd $pid is not running"
    rm -f "$PIDFILE"
    exit 0
fi

kill -TERM "$pid"
# dockerd stops its containers (up to their stop timeout) and containerd first.
for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "stop-test-env: dockerd $pid ignored SIGTERM for 30s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$PIDFILE"
echo "stop-test-env: stopped dockerd $pid"
