#!/usr/bin/env bash
# Run every Molecule scenario, and the suites that run against the all-in-one host before it goes.
#
# Scenarios run in tracks; the tracks run side by side (each scenario has its own containers, published ports and
# Docker network), the scenarios of one track one after the other:
#   default                  the all-in-one hosts: they answer most questions
#   cluster                  the split site (the longest verify), with its backup host
#   failover, then tls       the database on three hosts (Patroni) under faults, its backups and restores, then the
#                            ACME edge
# Three tracks on two cores: much of each is waiting (for a failover, a restore, a reconnect storm), not computing.
# For each scenario:
#   1. molecule destroy (what an earlier run left: `molecule test --destroy=never` skips its first destroy)
#   2. molecule test -s <name> --destroy=never
#        create, converge, idempotence, verify (Testinfra; its JUnit report goes to build/junit/molecule-<name>.xml
#        through PYTEST_ADDOPTS)
#   3. default only, against its Debian 12 host (https://127.0.0.1:18443): pytest tests/browser (JUnit:
#      build/junit/browser.xml), then pytest tests/badinput, bad input and two bounded fuzz passes through the same
#      Apache (COMMENTS_CONTAINER=debian12 for manage.py; JUnit: build/junit/badinput.xml); and on its Debian 13 host
#      the benchmark's smoke run (bench/bench.sh smoke with BENCH_CONTAINER=debian13; JUnit:
#      build/junit/bench-smoke.xml)
#   4. molecule destroy, always, also when a step failed or the run is interrupted
# A scenario's whole output goes to build/molecule/<name>.log; this script prints its progress, and the end of the
# log of every scenario that failed. A failing scenario does not stop the next one; the exit status is non-zero if
# any step failed.
#
# Usage: scripts/molecule-and-browser.sh [SCENARIO...]   (default: all, in the tracks above; named scenarios run one
#        after the other)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}" || exit 1
junit="${root}/build/junit"
logs="${root}/build/molecule"
mkdir -p "${junit}" "${logs}"

# What Molecule, its Ansible and the scenarios need to find (Makefile exports the same).
export PATH="${root}/.venv/bin:${PATH}"
export VIRTUAL_ENV="${root}/.venv"
export ANSIBLE_CONFIG="${root}/ansible.cfg"
export COMMENTS_IMAGE_DEBIAN12="${COMMENTS_IMAGE_DEBIAN12:-comments-debian:12}"
export COMMENTS_IMAGE_DEBIAN13="${COMMENTS_IMAGE_DEBIAN13:-comments-debian:13}"
export COMMENTS_WHEELHOUSE="${root}/build/wheelhouse"
export COMMENTS_JUNIT_DIR="${junit}"
# One password for the demo users of this run: the Testinfra conftest loads the demo data with it
# (DEMO_PASSWORD of load_demo) and the browser tests sign in with it.
COMMENTS_DEMO_PASSWORD="${COMMENTS_DEMO_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')}"
export COMMENTS_DEMO_PASSWORD
# Removing a scenario's containers deletes each one's writable layer (about 1 GB: the packages and the release a
# converge installed), all of them at once; on a busy disk that takes dockerd longer than the Docker API client's
# default 60 s, and the destroy step failed with "Read timed out" while dockerd went on deleting. The modules of
# Molecule's Docker driver read their API timeout from here.
export DOCKER_TIMEOUT="${DOCKER_TIMEOUT:-600}"
# No terminal in CI: plain output, and never a prompt.
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}"
export ANSIBLE_FORCE_COLOR=0
export PY_COLORS=0

log() { printf '[molecule %(%H:%M:%S)T] %s\n' -1 "$*"; }

# The tracks of a whole run: each element a track, its scenarios in order.
default_tracks=("default" "cluster" "failover tls")

destroy_scenario() {
    local scenario="$1"
    log "${scenario}: molecule destroy"
    if ! molecule destroy -s "${scenario}" >>"${logs}/${scenario}.log" 2>&1; then
        log "${scenario}: destroy FAILED; its containers may be left (docker ps -a)" >&2
        return 1
    fi
}

# One scenario, its suites and its destroy; prints nothing but progress. Returns non-zero if a step failed.
run_scenario() {
    local scenario="$1" rc=0 begun=${SECONDS}
    : >"${logs}/${scenario}.log"
    destroy_scenario "${scenario}" || rc=1
    log "${scenario}: molecule test --destroy=never (log: build/molecule/${scenario}.log)"
    if ! PYTEST_ADDOPTS="--junitxml=${junit}/molecule-${scenario}.xml -o junit_suite_name=molecule-${scenario}" \
        molecule test -s "${scenario}" --destroy=never >>"${logs}/${scenario}.log" 2>&1; then
        log "${scenario}: molecule test FAILED" >&2
        rc=1
    elif [[ "${scenario}" == default ]]; then
        log "default: browser tests against https://127.0.0.1:18443"
        if ! COMMENTS_BASE_URL="${COMMENTS_BASE_URL:-https://127.0.0.1:18443}" \
            pytest tests/browser --junitxml="${junit}/browser.xml" -o junit_suite_name=browser \
            >>"${logs}/${scenario}.log" 2>&1; then
            log "default: browser tests FAILED" >&2
            rc=1
        fi
        log "default: bad-input suite and fuzz passes against https://127.0.0.1:18443"
        if ! COMMENTS_BASE_URL="${COMMENTS_BASE_URL:-https://127.0.0.1:18443}" COMMENTS_CONTAINER=debian12 \
            pytest tests/badinput --junitxml="${junit}/badinput.xml" -o junit_suite_name=badinput \
            >>"${logs}/${scenario}.log" 2>&1; then
            log "default: bad-input suite FAILED" >&2
            rc=1
        fi
        log "default: benchmark smoke run on debian13"
        if ! BENCH_CONTAINER=debian13 bench/bench.sh smoke >>"${logs}/${scenario}.log" 2>&1; then
            log "default: benchmark smoke run FAILED" >&2
            rc=1
        fi
    fi
    destroy_scenario "${scenario}" || rc=1
    log "${scenario}: $( ((rc == 0)) && echo passed || echo FAILED ) in $((SECONDS - begun)) s"
    if ((rc != 0)); then
        printf '\n----- the last 300 lines of build/molecule/%s.log -----\n' "${scenario}"
        tail -n 300 "${logs}/${scenario}.log"
        printf -- '----- end of build/molecule/%s.log -----\n\n' "${scenario}"
    fi
    return "${rc}"
}

# A track: its scenarios in order; every one runs even when an earlier one failed.
run_track() {
    local scenario rc=0
    read -r -a track_scenarios <<<"$1"
    for scenario in "${track_scenarios[@]}"; do
        run_scenario "${scenario}" || rc=1
    done
    return "${rc}"
}

tracks=()
if (($# > 0)); then
    tracks=("$*")
else
    for track in "${default_tracks[@]}"; do
        read -r -a names <<<"${track}"
        for name in "${names[@]}"; do
            [[ -f "molecule/${name}/molecule.yml" ]] || { log "no scenario molecule/${name}" >&2; exit 1; }
        done
        tracks+=("${track}")
    done
fi

# Each track in the background, waited for, so that an interrupt is handled at once: the tracks are stopped (their
# process groups), then every scenario they may have left is destroyed.
set -m
pids=()
on_signal() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM -- "-${pid}" 2>/dev/null; done
    wait
    for track in "${tracks[@]}"; do
        read -r -a names <<<"${track}"
        for name in "${names[@]}"; do destroy_scenario "${name}"; done
    done
    exit 130
}
trap on_signal INT TERM

log "tracks side by side: $(printf "[%s] " "${tracks[@]}")"
for track in "${tracks[@]}"; do
    run_track "${track}" &
    pids+=("$!")
done
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        failed=1
        log "track ${tracks[$i]}: FAILED" >&2
    fi
done

if ((failed)); then
    exit 1
fi
log "all scenarios passed: ${tracks[*]}"
