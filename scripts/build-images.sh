#!/usr/bin/env bash
# Build the systemd-booting Debian base images that Molecule and the demo start as "hosts".
#
# No container registry is reachable here, so images are made from Debian's archive:
#   debootstrap --variant=minbase (a root file system) -> docker import (an image).
# One image per supported release:
#   comments-debian:12  (bookworm, Python 3.11)
#   comments-debian:13  (trixie,   Python 3.13)
#
# Cache: an image is rebuilt only when its tag is missing or was made by a different recipe
# (the image carries the checksum of its recipe as a label; see `recipe` below). Set COMMENTS_IMAGE_DEBIAN12 /
# COMMENTS_IMAGE_DEBIAN13 to use an image of your own instead; then nothing is built for it.
#
# Usage: scripts/build-images.sh [12] [13]      (default: both)
# Env:   IMAGES_VERIFY=0   skip the boot check (default: boot-check every image built now)
#        DEBIAN_MIRROR     archive to bootstrap from (default http://deb.debian.org/debian)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build/images"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
verify="${IMAGES_VERIFY:-1}"
# What the hosts need before Ansible can manage them: an init, Python, `ip` (facts), CA roots.
include=systemd,systemd-sysv,python3,iproute2,ca-certificates

# Options that let systemd run as PID 1 in a container on this host (`--privileged` does not
# work here). Molecule's platforms and the demo use the same set.
systemd_run_opts=(
    --cap-add SYS_ADMIN
    --security-opt seccomp=unconfined
    --cgroupns=host
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp
)

log() { printf '[build-images %(%H:%M:%S)T] %s\n' -1 "$*"; }

suite_of() {
    case "$1" in
        12) echo bookworm ;;
        13) echo trixie ;;
        *) echo "unknown Debian release: $1" >&2; return 1 ;;
    esac
}

override_of() {
    case "$1" in
        12) echo "${COMMENTS_IMAGE_DEBIAN12:-}" ;;
        13) echo "${COMMENTS_IMAGE_DEBIAN13:-}" ;;
    esac
}

image_recipe() {
    docker image inspect --format '{{ index .Config.Labels "org.comments.recipe" }}' "$1" 2>/dev/null || true
}

# debootstrap mounts /proc (and /sys) inside the target and unmounts them at exit, but ignores
# a failed unmount (for example while another process reads below it). Make sure nothing of
# the host stays mounted in the tree before it is archived or deleted.
release_mounts() {
    local dir="$1" mnt
    while read -r mnt; do
        umount "${mnt}" 2>/dev/null || umount -l "${mnt}"
    done < <(awk -v d="${dir}/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}

remove_rootfs() {
    local dir="$1"
    [[ -d "${dir}" ]] || return 0
    release_mounts "${dir}"
    # --one-file-system: even if a mount survived, never delete across it.
    rm -rf --one-file-system "${dir}"
}

# Turn a fresh debootstrap tree into something that boots well as a container.
tidy_rootfs() {
    local dir="$1" suite="$2"

    # apt: the release, its updates and its security archive, over plain http (the only way
    # containers reach the archive here). deb822 format, as Debian 12+ writes it.
    rm -f "${dir}/etc/apt/sources.list"
    cat >"${dir}/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: ${mirror}
Suites: ${suite} ${suite}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${security_mirror}
Suites: ${suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

    # Images stay small: no package cache, no lists (every play runs apt update first), no
    # docs. Directories stay, as maintainer scripts (update-alternatives) expect them.
    rm -rf "${dir}"/var/cache/apt/*.bin "${dir}"/var/cache/apt/archives/*.deb \
        "${dir}"/var/lib/apt/lists/* "${dir}"/var/log/*.log "${dir}"/var/cache/debconf/*-old \
        "${dir}"/var/lib/dpkg/*-old
    find "${dir}/usr/share/doc" "${dir}/usr/share/man" "${dir}/usr/share/info" \
        "${dir}/usr/share/locale" -type f ! -name copyright -delete 2>/dev/null || true

    # Each container gets its own machine id at boot (an empty file means "generate one").
    : >"${dir}/etc/machine-id"
    rm -f "${dir}/var/lib/dbus/machine-id"
    # Docker bind-mounts these; do not ship the build host's.
    : >"${dir}/etc/resolv.conf"
    : >"${dir}/etc/hostname"

    # Units that make no sense without real hardware or a console; masked so that a healthy
    # container reports "running" rather than "degraded".
    local unit
    for unit in getty@tty1.service console-getty.service; do
        ln -sf /dev/null "${dir}/etc/systemd/system/${unit}"
    done
}

# The image settings on top of the imported file system, as a Dockerfile.
image_settings() {
    local base="$1" suite="$2"
    cat <<DOCKERFILE
FROM ${base}
ENV container=docker
STOPSIGNAL SIGRTMIN+3
LABEL org.comments.recipe="${recipe}" org.comments.suite="${suite}"
CMD ["/sbin/init"]
DOCKERFILE
}

build_one() {
    local release="$1" suite tag override dir started
    suite="$(suite_of "${release}")"
    tag="comments-debian:${release}"
    override="$(override_of "${release}")"

    if [[ -n "${override}" && "${override}" != "${tag}" ]]; then
        log "${tag}: COMMENTS_IMAGE_DEBIAN${release}=${override} is set; not building"
        return 0
    fi
    if [[ "$(image_recipe "${tag}")" == "${recipe}" ]]; then
        log "${tag}: up to date (recipe ${recipe})"
        return 0
    fi

    started=${SECONDS}
    # The root file system is built outside the work tree, so that nothing that walks the
    # repository (grep -r, linters) wanders into it while debootstrap has /proc mounted there.
    dir="$(mktemp -d "${ROOTFS_TMPDIR:-/var/tmp}/comments-rootfs-${suite}.XXXXXX")"
    rootfs_dirs+=("${dir}")
    mkdir -p "${build}/cache-${suite}"
    log "${tag}: debootstrap ${suite} (log: ${build}/debootstrap-${suite}.log)"
    if ! debootstrap --variant=minbase --include="${include}" \
        --cache-dir="${build}/cache-${suite}" \
        "${suite}" "${dir}" "${mirror}" >"${build}/debootstrap-${suite}.log" 2>&1; then
        tail -n 30 "${build}/debootstrap-${suite}.log" >&2
        [[ -f "${dir}/debootstrap/debootstrap.log" ]] && tail -n 30 "${dir}/debootstrap/debootstrap.log" >&2
        return 1
    fi
    release_mounts "${dir}"
    tidy_rootfs "${dir}" "${suite}"

    log "${tag}: docker import"
    local previous
    previous="$(docker image inspect --format '{{ .Id }}' "${tag}" 2>/dev/null || true)"
    # --one-file-system: never archive a host file system still mounted inside.
    if ! tar --numeric-owner --xattrs --one-file-system -C "${dir}" -c . \
        | docker import - "${tag}-rootfs" >/dev/null; then
        docker rmi "${tag}-rootfs" >/dev/null 2>&1 || true
        return 1
    fi
    remove_rootfs "${dir}"
    # `docker import --change` cannot set STOPSIGNAL on this Docker version, so the image
    # settings are a one-step build on top of the imported file system (no extra layer).
    # systemd as PID 1 shuts down cleanly on SIGRTMIN+3 (`docker stop`), not on SIGTERM;
    # `container=docker` is how systemd and Ansible's facts learn they run in a container.
    image_settings "${tag}-rootfs" "${suite}" \
        | DOCKER_BUILDKIT=0 docker build --quiet --tag "${tag}" - >/dev/null 2>"${build}/docker-build-${suite}.log"
    docker rmi "${tag}-rootfs" >/dev/null
    # The image this one replaces, unless a container still uses it.
    if [[ -n "${previous}" ]]; then
        docker rmi "${previous}" >/dev/null 2>&1 || true
    fi
    log "${tag}: built in $((SECONDS - started))s, $(docker image inspect --format '{{ .Size }}' "${tag}" | numfmt --to=iec)"

    if [[ "${verify}" == 1 ]]; then
        verify_boot "${tag}"
    fi
}

# Boot the image with the run options the tests use, wait for systemd to settle, and check
# that apt can read the archive (the only way roles get packages into it).
verify_boot() {
    local tag="$1" name state="" i
    name="comments-imagecheck-${tag//[:.]/-}-$$"
    log "${tag}: boot check (${name})"
    check_containers+=("${name}")
    docker run -d --name "${name}" "${systemd_run_opts[@]}" "${tag}" >/dev/null
    # Right after `docker run`, systemctl may not reach PID 1 yet: ask again until it does.
    for ((i = 0; i < 90; i++)); do
        state="$(docker exec "${name}" systemctl is-system-running 2>/dev/null || true)"
        case "${state}" in running | degraded) break ;; esac
        sleep 1
    done
    case "${state}" in
        running)
            log "${tag}: systemd is ${state}" ;;
        degraded)
            log "${tag}: systemd is ${state}; failed units:"
            docker exec "${name}" systemctl --no-legend --failed || true ;;
        *)
            log "${tag}: systemd did not come up (state: '${state:-none}')" >&2
            docker logs --tail 30 "${name}" >&2 || true
            return 1 ;;
    esac
    if ! docker exec "${name}" apt-get -q update >"${build}/apt-check-${tag#*:}.log" 2>&1; then
        log "${tag}: apt-get update failed:" >&2
        tail -n 20 "${build}/apt-check-${tag#*:}.log" >&2
        return 1
    fi
    log "${tag}: apt-get update works"
    docker rm -f "${name}" >/dev/null
}

# The recipe is what shapes an image: the package list, the mirrors and the code that tidies
# the tree and sets the image settings (bash prints the functions' bodies). Change any of them
# and every image is rebuilt on the next run; edits elsewhere (logging, checks) keep the cache.
recipe="$({ echo "${include} ${mirror} ${security_mirror}"; declare -f tidy_rootfs image_settings; } \
    | sha256sum | cut -c1-16)"

# Boot-check containers and root file systems are removed however the script ends.
check_containers=()
rootfs_dirs=()
cleanup() {
    local name dir
    for name in "${check_containers[@]}"; do
        docker rm -f "${name}" >/dev/null 2>&1 || true
    done
    for dir in "${rootfs_dirs[@]}"; do
        remove_rootfs "${dir}" || true
    done
}
trap cleanup EXIT

main() {
    local releases=("$@")
    ((${#releases[@]})) || releases=(12 13)
    mkdir -p "${build}"
    if ! docker info >/dev/null 2>&1; then
        "${root}/scripts/dockerd.sh"
    fi
    local release
    for release in "${releases[@]}"; do
        build_one "${release}"
    done
    # Earlier builds of ours that lost their tag and that no container uses any more.
    docker image prune --force --filter label=org.comments.recipe >/dev/null
}

main "$@"
