#!/usr/bin/env bash
# Make sure a Docker daemon answers on the default socket.
#
# The CI machine boots with the docker.io package installed (by bootstrap.sh) but no init
# system running services, so nobody starts dockerd for us. When `docker info` fails we start
# dockerd in the background (detached with setsid so it outlives `make`), log to
# build/dockerd.log, record its PID in build/dockerd.pid and wait until it answers.
# An already-running daemon (ours or anyone's) is left alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build"
log="${build}/dockerd.log"
pidfile="${build}/dockerd.pid"
timeout="${DOCKERD_TIMEOUT:-60}"

if docker info >/dev/null 2>&1; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd.sh: dockerd not found; run scripts/bootstrap.sh first" >&2
    exit 1
fi

mkdir -p "${build}"
# A stale pidfile from an earlier (dead) daemon would make dockerd refuse to start.
if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
fi

echo "dockerd.sh: starting dockerd (log: ${log})"
setsid dockerd >>"${log}" 2>&1 </dev/null &
echo $! >"${pidfile}"

for ((i = 0; i < timeout * 2; i++)); do
    if docker info >/dev/null 2>&1; then
        echo "dockerd.sh: dockerd answers (pid $(cat "${pidfile}"))"
        exit 0
    fi
    if ! kill -0 "$(cat "${pidfile}")" 2>/dev/null; then
        echo "dockerd.sh: dockerd exited; last lines of ${log}:" >&2
        tail -n 20 "${log}" >&2
        exit 1
    fi
    sleep 0.5
done
echo "dockerd.sh: dockerd did not answer within ${timeout}s; last lines of ${log}:" >&2
tail -n 20 "${log}" >&2
exit 1
