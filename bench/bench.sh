#!/usr/bin/env bash
# The benchmark (docs/performance.md): deploy the stack with the roles into its own container, then run
# bench/run.py against it, against Daphne directly and against a plain `websockets` broadcast server.
#   bench/bench.sh full    every phase at the hall's sizes (up to 10,000 viewers); report in bench/results/ (< 25 min)
#   bench/bench.sh smoke   50 viewers, a few comments, a reconnect; JUnit in build/junit/bench-smoke.xml; fails only
#                          on lost or repeated events and errors, never on timing
#   bench/bench.sh down    remove the container
# The container (comments-bench, 127.0.0.1:28443 published for a look) is left running after a run so that a second
# run skips most of the deploy; `bench/bench.sh down` removes it. BENCH_KEEP=0 removes it at the end;
# BENCH_SKIP_DEPLOY=1 runs against the container as it is (while working on bench/ itself). BENCH_CONTAINER=NAME runs
# against a container deployed elsewhere with the REST rate limits off and two Daphne workers (make test runs the
# smoke run on molecule/default's Debian 13 host): nothing is deployed, and the container is never removed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

container="${BENCH_CONTAINER:-comments-bench}"
own_container=1
if [[ -n "${BENCH_CONTAINER:-}" ]]; then
    own_container=0
fi
image="${COMMENTS_IMAGE_DEBIAN12:-comments-debian:12}"
https_port=28443
# Matches comments_listen_backlog for comments_websocket_capacity 12000 (bench/inventory): /proc/sys is read-only
# inside the container, so the listen queues are sized here, where it is made.
somaxconn=12000

if [[ -x "$root/.venv/bin/ansible-playbook" ]]; then
    export PATH="$root/.venv/bin:$PATH"
fi
export ANSIBLE_CONFIG="$root/ansible.cfg"
export COMMENTS_WHEELHOUSE="${COMMENTS_WHEELHOUSE:-$root/build/wheelhouse}"

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# shellcheck source=scripts/systemd-container.sh
. "$root/scripts/systemd-container.sh"

start_container() {
    # As scripts/demo.sh, plus the kernel's listen queues and ports for 10,000 sockets. Published on 127.0.0.1 only;
    # the load itself enters the container's network namespace.
    systemd_container_up "$container" "$image" \
        --sysctl net.core.somaxconn="$somaxconn" --sysctl net.ipv4.tcp_max_syn_backlog="$somaxconn" \
        --sysctl net.ipv4.ip_local_port_range="10000 65000" \
        --publish "127.0.0.1:${https_port}:443"
}

deploy() {
    if ((own_container == 0)); then
        [[ "$(container_state "$container")" == running ]] || { log "container $container is not running"; return 1; }
        log "using $container as deployed"
        return 0
    fi
    start_container
    if [[ "${BENCH_SKIP_DEPLOY:-0}" == 1 ]]; then
        log "BENCH_SKIP_DEPLOY=1: using the stack as deployed before"
        return 0
    fi
    log "ansible-playbook -i bench/inventory playbooks/site.yml"
    ansible-playbook -i bench/inventory playbooks/site.yml >"$root/build/bench-deploy.log" 2>&1 || {
        tail -n 40 "$root/build/bench-deploy.log" >&2
        return 1
    }
    grep -E '^comments-bench +:' "$root/build/bench-deploy.log" >&2 || true
}

down() {
    if [[ "$(container_state "$container")" != absent ]]; then
        docker rm --force "$container" >/dev/null
        log "removed container $container"
    fi
}

mode="${1:-}"
case "$mode" in
    full|smoke)
        mkdir -p "$root/build/junit" "$root/bench/results"
        deploy
        rc=0
        # The load enters the container's network namespace: every connection goes to its 127.0.0.1, with no
        # docker-proxy in between.
        pid="$(docker inspect --format '{{.State.Pid}}' "$container")"
        nsenter --target "$pid" --net -- \
            "$root/.venv/bin/python" "$root/bench/run.py" --mode "$mode" --container "$container" || rc=$?
        if [[ "${BENCH_KEEP:-1}" == 0 ]] && ((own_container)); then down; fi
        exit "$rc" ;;
    down) if ((own_container)); then down; fi ;;
    *) echo "usage: $0 full|smoke|down" >&2; exit 2 ;;
esac
