#!/usr/bin/env bash
# Prepare this machine (Debian 12, root) for `make demo` and `make test`:
#   1. Debian packages: Docker, debootstrap, PostgreSQL and Redis binaries (the app tests start
#      their own throw-away servers), Chromium (Playwright drives it), python3-venv, ...
#   2. a Docker daemon that answers (scripts/dockerd.sh),
#   3. the controller virtualenv .venv with requirements/{controller,app,test}.txt.
# Idempotent and quick when done: packages are checked with dpkg, the venv with a stamp
# (build/venv.stamp = checksum of the requirement files and the interpreter).
#
# Env: PYTHON  interpreter for .venv (default: Debian's /usr/bin/python3, else python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build"
venv="${root}/.venv"
mkdir -p "${build}"

log() { printf '[bootstrap %(%H:%M:%S)T] %s\n' -1 "$*"; }

apt_packages=(
    docker.io       # container "hosts" for Molecule and the demo
    debootstrap     # builds their base images (scripts/build-images.sh)
    postgresql      # binaries for the app tests' own server (Debian's cluster is not used)
    redis-server    # idem: tests start redis-server on a port of their own
    chromium        # the browser Playwright drives (/usr/bin/chromium); no browser downloads
    fonts-liberation  # so pages render real text in screenshots
    fonts-noto-color-emoji  # and reactions as emoji, not empty boxes
    python3-venv    # python3 -m venv on Debian
    shellcheck      # make lint: the shell scripts
    rsync git make openssl curl ca-certificates
)

missing_packages() {
    local pkg
    for pkg in "${apt_packages[@]}"; do
        if [[ "$(dpkg-query -W -f '${db:Status-Status}' "${pkg}" 2>/dev/null)" != installed ]]; then
            echo "${pkg}"
        fi
    done
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        log "Debian packages: all present"
        return 0
    fi
    log "Debian packages: installing ${missing[*]}"

    # Package scripts must not start Debian's own PostgreSQL, Redis or Docker services: tests
    # start their own servers, and dockerd is started below. policy-rc.d exit 101 = "not now".
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    # shellcheck disable=SC2064  # expand now
    trap "[[ ${own_policy} == 1 ]] && rm -f /usr/sbin/policy-rc.d" EXIT

    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
        -o Dpkg::Options::=--force-confold)
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when they are missing or the install fails with them.
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        "${apt[@]}" update >"${build}/apt.log" 2>&1
    fi
    if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"${build}/apt.log" 2>&1; then
        log "Debian packages: install failed with the current lists; updating them"
        "${apt[@]}" update >>"${build}/apt.log" 2>&1
        if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"${build}/apt.log" 2>&1; then
            tail -n 30 "${build}/apt.log" >&2
            return 1
        fi
    fi
    log "Debian packages: done (log: build/apt.log)"
}

pick_python() {
    if [[ -n "${PYTHON:-}" ]]; then
        echo "${PYTHON}"
    elif [[ -x /usr/bin/python3 ]]; then
        echo /usr/bin/python3
    else
        command -v python3
    fi
}

make_venv() {
    local python reqs=() f stamp_value
    python="$(pick_python)"
    for f in controller app test; do
        if [[ -f "${root}/requirements/${f}.txt" ]]; then
            reqs+=("${root}/requirements/${f}.txt")
        else
            log "warning: requirements/${f}.txt is missing; .venv will lack it"
        fi
    done
    stamp_value="$( { "${python}" -VV; cat "${reqs[@]}"; } | sha256sum | cut -d' ' -f1)"
    if [[ -x "${venv}/bin/python" && -f "${build}/venv.stamp" \
        && "$(cat "${build}/venv.stamp")" == "${stamp_value}" ]]; then
        log ".venv: up to date"
        return 0
    fi

    if [[ ! -x "${venv}/bin/python" ]] || ! "${venv}/bin/python" -c '' 2>/dev/null; then
        log ".venv: creating with ${python} ($("${python}" -V 2>&1))"
        rm -rf "${venv}"
        "${python}" -m venv "${venv}"
    fi
    log ".venv: installing ${reqs[*]##"${root}"/} (log: build/pip.log)"
    # One resolver run over all three files, so a pin that disagrees between them fails
    # here with pip's conflict message instead of silently replacing another pin.
    local args=() r
    for r in "${reqs[@]}"; do args+=(-r "${r}"); done
    if ! "${venv}/bin/pip" install --disable-pip-version-check "${args[@]}" >"${build}/pip.log" 2>&1; then
        grep -vE "^WARNING: Location .* is ignored" "${build}/pip.log" | tail -n 30 >&2
        return 1
    fi
    echo "${stamp_value}" >"${build}/venv.stamp"
    log ".venv: done"
}

main() {
    if [[ "$(id -u)" != 0 ]]; then
        echo "bootstrap.sh: run as root (installs Debian packages, starts dockerd)" >&2
        exit 1
    fi
    install_packages
    "${root}/scripts/dockerd.sh"
    make_venv
}

main "$@"
