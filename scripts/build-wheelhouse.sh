#!/usr/bin/env bash
# Build the wheelhouses the targets install the app from.
#
# Containers reach Debian's archive over plain http but not PyPI (TLS fails), and a production
# host should not build from source anyway, so the controller downloads every pinned runtime
# dependency (requirements/app.txt) as binary wheels for each target Python:
#   build/wheelhouse/cp311/   Debian 12 (bookworm, glibc 2.36)
#   build/wheelhouse/cp313/   Debian 13 (trixie,   glibc 2.41)
# The roles copy the matching folder and run `pip install --no-index --find-links`.
#
# Skipped when up to date: each folder has a stamp with the checksum of app.txt and this script.
# A package with no wheel for a target is reported by name, so its pin can be changed.
#
# Usage: scripts/build-wheelhouse.sh           build (or confirm) both wheelhouses
#        scripts/build-wheelhouse.sh --check   also install each into a fresh venv inside the
#                                              matching comments-debian image (needs images)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# APP_REQUIREMENTS: another requirements file (to try a pin change before committing it).
reqs="${APP_REQUIREMENTS:-${root}/requirements/app.txt}"
out="${root}/build/wheelhouse"
arch="$(uname -m)"

# target tag -> "python version|newest glibc on that Debian release|Debian release"
declare -A targets=(
    [cp311]="3.11|2.36|12"
    [cp313]="3.13|2.41|13"
)

log() { printf '[wheelhouse %(%H:%M:%S)T] %s\n' -1 "$*"; }

pip_cmd() {
    # The controller venv's pip when there is one (make runs bootstrap first), else the system's.
    if [[ -x "${root}/.venv/bin/pip" ]]; then
        echo "${root}/.venv/bin/pip"
    else
        echo "python3 -m pip"
    fi
}

# pip matches --platform tags literally (no "glibc X runs manylinux_2_Y for Y <= X" logic), so
# list every manylinux level the target's glibc can run, plus the legacy aliases.
platform_args() {
    local glibc_max="$1" minor
    printf '%s\n' --platform "linux_${arch}"
    for ((minor = 5; minor <= ${glibc_max#2.}; minor++)); do
        printf '%s\n' --platform "manylinux_2_${minor}_${arch}"
    done
    printf '%s\n' --platform "manylinux1_${arch}" --platform "manylinux2010_${arch}" \
        --platform "manylinux2014_${arch}"
}

# Package names (lower-case, '-' for '_' and '.') pinned in app.txt, one a line.
pinned_names() {
    sed -E 's/[[:space:]]*#.*//; /^[[:space:]]*$/d; /^-/d; s/[[:space:]]*(\[.*\])?[=<>!~].*//' "${reqs}" \
        | tr 'A-Z_.' 'a-z--' | sort -u
}

wheel_names() {
    local dir="$1" f
    for f in "${dir}"/*.whl; do
        [[ -e "${f}" ]] || continue
        basename "${f}" | cut -d- -f1
    done | tr 'A-Z_.' 'a-z--' | sort -u
}

build_one() {
    local tag="$1" spec pyver glibc dir stamp_value pip
    spec="${targets[${tag}]}"
    IFS='|' read -r pyver glibc _ <<<"${spec}"
    dir="${out}/${tag}"
    stamp_value="$(cat "${reqs}" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1) ${arch}"
    if [[ -f "${dir}/.stamp" && "$(cat "${dir}/.stamp")" == "${stamp_value}" ]]; then
        log "${tag}: up to date ($(find "${dir}" -name '*.whl' | wc -l) wheels)"
        return 0
    fi

    log "${tag}: downloading wheels for CPython ${pyver}, glibc <= ${glibc}, ${arch}"
    rm -rf "${dir}"
    mkdir -p "${dir}"
    pip="$(pip_cmd)"
    local platforms
    mapfile -t platforms < <(platform_args "${glibc}")
    local common=(download --disable-pip-version-check --only-binary=:all: --implementation cp
        --python-version "${pyver}" --abi "cp${tag#cp}" --abi abi3 --abi none
        "${platforms[@]}" --dest "${dir}")
    # shellcheck disable=SC2086  # pip may be "python3 -m pip"
    if ! ${pip} "${common[@]}" -r "${reqs}" >"${dir}.log" 2>&1; then
        log "${tag}: pip download failed; looking for the packages without a usable wheel"
        local line missing=()
        while read -r line; do
            # shellcheck disable=SC2086
            if ! ${pip} "${common[@]}" --no-deps "${line}" >>"${dir}.log" 2>&1; then
                missing+=("${line}")
            fi
        done < <(sed -E 's/[[:space:]]*#.*//; /^[[:space:]]*$/d; /^-/d' "${reqs}")
        if ((${#missing[@]})); then
            log "${tag}: no ${tag} wheel for: ${missing[*]}" >&2
        else
            grep -vE '^WARNING: Location .* is ignored' "${dir}.log" | tail -n 20 >&2
        fi
        return 1
    fi

    # pip evaluates environment markers with the interpreter it runs on, not the target's
    # (--python-version 3.11 does not make python_full_version 3.11.2, Debian 12's). So also
    # fetch every pin of app.txt with its marker removed: a pin such as
    # `async-timeout==5.0.1 ; python_full_version < "3.11.3"` then lands in both wheelhouses,
    # and each target's pip decides with its own interpreter whether to install it.
    # shellcheck disable=SC2086
    if ! ${pip} "${common[@]}" --no-deps -r <(sed -E 's/[[:space:]]*#.*//; s/[[:space:]]*;.*//; /^[[:space:]]*$/d; /^-/d' "${reqs}") \
        >>"${dir}.log" 2>&1; then
        grep -vE '^WARNING: Location .* is ignored' "${dir}.log" | tail -n 20 >&2
        return 1
    fi

    # Anything downloaded but not pinned means app.txt misses a transitive pin.
    local extra
    extra="$(comm -13 <(pinned_names) <(wheel_names "${dir}") | tr '\n' ' ')"
    if [[ -n "${extra// /}" ]]; then
        log "${tag}: warning: requirements/app.txt does not pin: ${extra}" >&2
    fi
    echo "${stamp_value}" >"${dir}/.stamp"
    log "${tag}: $(find "${dir}" -name '*.whl' | wc -l) wheels, $(du -sh "${dir}" | cut -f1)"
}

# Install a wheelhouse the way a role does, in the matching Debian image, offline from PyPI.
check_one() {
    local tag="$1" spec pyver release image name
    spec="${targets[${tag}]}"
    IFS='|' read -r pyver _ release <<<"${spec}"
    case "${release}" in
        12) image="${COMMENTS_IMAGE_DEBIAN12:-comments-debian:12}" ;;
        13) image="${COMMENTS_IMAGE_DEBIAN13:-comments-debian:13}" ;;
    esac
    name="comments-wheelcheck-${tag}-$$"
    log "${tag}: install check in ${image}"
    # libpq5: the pure-Python psycopg loads it at import time, as on a real server.
    if docker run --rm --name "${name}" \
        -v "${out}/${tag}:/wheelhouse:ro" -v "${reqs}:/app.txt:ro" \
        "${image}" bash -euo pipefail -c "
            export DEBIAN_FRONTEND=noninteractive
            apt-get -q update >/dev/null
            apt-get -q -y install --no-install-recommends python3-venv libpq5 >/dev/null
            python3 -m venv /opt/venv
            test \"\$(/opt/venv/bin/python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])')\" = ${pyver}
            /opt/venv/bin/pip install -q --no-index --find-links /wheelhouse -r /app.txt
            cd /tmp && /opt/venv/bin/python -c '
import channels, channels_redis, daphne, django, psycopg, redis, rest_framework, drf_spectacular, twisted
import cryptography.hazmat.bindings._rust, yaml, msgpack, rpds, zope.interface
print(\"imports ok: django\", django.__version__, \"psycopg\", psycopg.__version__, psycopg.pq.__impl__)'
            /opt/venv/bin/pip check
        " >"${out}/check-${tag}.log" 2>&1; then
        log "${tag}: $(grep -E '^imports ok' "${out}/check-${tag}.log")"
    else
        log "${tag}: install check FAILED; last lines of build/wheelhouse/check-${tag}.log:" >&2
        tail -n 20 "${out}/check-${tag}.log" >&2
        return 1
    fi
}

main() {
    local check=0
    [[ "${1:-}" == --check ]] && check=1
    if [[ ! -f "${reqs}" ]]; then
        echo "build-wheelhouse.sh: ${reqs} is missing" >&2
        exit 1
    fi
    mkdir -p "${out}"
    local tag rc=0
    for tag in cp311 cp313; do
        build_one "${tag}" || rc=1
    done
    if ((check && rc == 0)); then
        for tag in cp311 cp313; do
            check_one "${tag}" || rc=1
        done
    fi
    return "${rc}"
}

main "$@"
