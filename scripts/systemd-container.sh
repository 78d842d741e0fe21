#!/usr/bin/env bash
# Shared by scripts/demo.sh and bench/bench.sh (sourced): a Debian container with systemd as PID 1, made once and
# reused. Each caller defines log() before sourcing.

# The container's state as docker says it ("running", "exited", ...), or "absent".
container_state() {
    local state
    if state="$(docker container inspect --format '{{.State.Status}}' "$1" 2>/dev/null)"; then
        echo "$state"
    else
        echo absent
    fi
}

# systemd_container_up NAME IMAGE [DOCKER RUN OPTIONS...]: create (with the options; publish ports on 127.0.0.1
# only) or start the container, then wait until systemd has finished booting ("degraded" is fine: the play starts
# what it needs).
systemd_container_up() {
    local container="$1" image="$2"
    shift 2
    case "$(container_state "$container")" in
        running)
            log "container $container is running" ;;
        absent)
            log "creating container $container from $image"
            # systemd as PID 1 in a container: these options work here, --privileged does not.
            docker run --detach --name "$container" --hostname "$container" \
                --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns=host \
                --volume /sys/fs/cgroup:/sys/fs/cgroup:rw \
                --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
                "$@" "$image" /sbin/init >/dev/null ;;
        *)
            log "starting container $container"
            docker start "$container" >/dev/null ;;
    esac
    local state=""
    for _ in $(seq 1 60); do
        state="$(docker exec "$container" systemctl is-system-running 2>/dev/null || true)"
        case "$state" in running|degraded) return 0 ;; esac
        sleep 1
    done
    log "systemd in $container did not finish booting (state: ${state:-none})"
    return 1
}
