#!/usr/bin/env bash
# Run every Molecule scenario, and the browser tests against the default one.
#
# For each scenario folder molecule/<name>/ (default first, then the rest by name):
#   1. molecule test -s <name> --destroy=never
#        create, converge, idempotence, verify (Testinfra; its JUnit report is written to
#        build/junit/molecule-<name>.xml through PYTEST_ADDOPTS)
#   2. default only: pytest tests/browser against the deployed Debian 12 instance
#        (COMMENTS_BASE_URL=https://127.0.0.1:18443; JUnit: build/junit/browser.xml), then pytest tests/badinput,
#        bad input and two bounded fuzz passes through the same Apache (COMMENTS_CONTAINER=debian12 for
#        manage.py; JUnit: build/junit/badinput.xml)
#   3. molecule destroy -s <name>, always, also when a step failed or the run is interrupted (also once before step 1,
#      for what an earlier run left); a destroy that fails is tried again, three times in all.
# A failing scenario does not stop the next one; the exit status is non-zero if any step failed.
#
# Usage: scripts/molecule-and-browser.sh [SCENARIO...]   (default: all scenarios)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}" || exit 1
junit="${root}/build/junit"
mkdir -p "${junit}"

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
# No terminal in CI: plain output, and never a prompt.
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}"
export ANSIBLE_FORCE_COLOR=0
export PY_COLORS=0

log() { printf '[molecule %(%H:%M:%S)T] %s\n' -1 "$*"; }

scenarios=("$@")
if ((${#scenarios[@]} == 0)); then
    [[ -f molecule/default/molecule.yml ]] && scenarios+=(default)
    for dir in molecule/*/; do
        name="$(basename "${dir}")"
        [[ "${name}" != default && -f "${dir}molecule.yml" ]] && scenarios+=("${name}")
    done
fi
if ((${#scenarios[@]} == 0)); then
    log "no scenario (molecule/*/molecule.yml) found" >&2
    exit 1
fi

current=""
# Docker may take longer to remove a scenario's containers than the driver waits for (a busy disk deleting five
# containers' layers: "Read timed out"); the removal goes on in dockerd, so a later attempt finds them gone.
destroy_scenario() {
    local scenario="$1" attempt
    for attempt in 1 2 3; do
        log "${scenario}: molecule destroy (attempt ${attempt})"
        molecule destroy -s "${scenario}" && return 0
        sleep 20
    done
    log "${scenario}: destroy FAILED three times; its containers may be left (docker ps -a)" >&2
    return 1
}
destroy_current() {
    [[ -n "${current}" ]] || return 0
    destroy_scenario "${current}" || true
    current=""
}
# Commands run in the background and are waited for, so that an interrupt is handled at once
# (bash runs traps only between foreground commands): stop the step, then destroy.
child=""
run() {
    "$@" &
    child=$!
    wait "${child}"
    local rc=$?
    child=""
    return "${rc}"
}
on_signal() {
    [[ -n "${child}" ]] && kill -TERM "${child}" 2>/dev/null && wait "${child}"
    exit 130
}
trap destroy_current EXIT
trap on_signal INT TERM

failed=()
for scenario in "${scenarios[@]}"; do
    current="${scenario}"
    # `molecule test --destroy=never` skips its first destroy too: without this one, instances an earlier run left
    # behind (or their state, when Docker lost them) would be taken as created and never made again.
    destroy_scenario "${scenario}" || failed+=("destroy-before:${scenario}")
    log "${scenario}: molecule test --destroy=never"
    if ! PYTEST_ADDOPTS="--junitxml=${junit}/molecule-${scenario}.xml -o junit_suite_name=molecule-${scenario}" \
        run molecule test -s "${scenario}" --destroy=never; then
        failed+=("molecule:${scenario}")
    elif [[ "${scenario}" == default ]]; then
        if [[ -d tests/browser ]]; then
            log "default: browser tests against https://127.0.0.1:18443"
            if ! COMMENTS_BASE_URL="${COMMENTS_BASE_URL:-https://127.0.0.1:18443}" \
                run pytest tests/browser --junitxml="${junit}/browser.xml" -o junit_suite_name=browser; then
                failed+=("browser")
            fi
        else
            log "default: no tests/browser folder; browser tests skipped"
        fi
        if [[ -d tests/badinput ]]; then
            log "default: bad-input suite and fuzz passes against https://127.0.0.1:18443"
            if ! COMMENTS_BASE_URL="${COMMENTS_BASE_URL:-https://127.0.0.1:18443}" \
                COMMENTS_CONTAINER="${COMMENTS_CONTAINER:-debian12}" \
                run pytest tests/badinput --junitxml="${junit}/badinput.xml" -o junit_suite_name=badinput; then
                failed+=("badinput")
            fi
        else
            log "default: no tests/badinput folder; bad-input suite skipped"
        fi
    fi
    destroy_current
done

if ((${#failed[@]})); then
    log "FAILED: ${failed[*]}" >&2
    exit 1
fi
log "all scenarios passed: ${scenarios[*]}"
