#!/usr/bin/env bash
# The local demo: the whole stack in one systemd container, deployed by Ansible exactly as a server would be.
#   scripts/demo.sh up     create (or reuse) the container comments-demo, run playbooks/site.yml against it, load the
#                          demo data, print the URL and the logins. Running it again is quick and changes nothing.
#   scripts/demo.sh down   remove the container (the secrets in build/secrets/ stay for the next `up`).
# Needs: dockerd, the image comments-debian:12 (make images), the wheelhouse (make wheelhouse) and .venv
# (make bootstrap); `make demo` does all of it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

container=comments-demo
image="${COMMENTS_IMAGE_DEBIAN12:-comments-debian:12}"
https_port=8443
http_port=8080
secrets="$root/build/secrets"

# The controller's tools (ansible-playbook) from .venv, and this repository's ansible.cfg.
if [[ -x "$root/.venv/bin/ansible-playbook" ]]; then
    export PATH="$root/.venv/bin:$PATH"
fi
export ANSIBLE_CONFIG="$root/ansible.cfg"

log() { echo "[demo $(date +%H:%M:%S)] $*" >&2; }

# shellcheck source=scripts/systemd-container.sh
. "$root/scripts/systemd-container.sh"

start_container() {
    systemd_container_up "$container" "$image" \
        --publish "127.0.0.1:${https_port}:443" --publish "127.0.0.1:${http_port}:80"
}

# Made once on this machine and reused, so that `up` twice changes nothing.
demo_password() {
    mkdir -p "$secrets"
    chmod 0700 "$secrets"
    if [[ ! -s "$secrets/demo_password" ]]; then
        (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(12))' >"$secrets/demo_password")
    fi
    cat "$secrets/demo_password"
}

up() {
    start_container
    log "ansible-playbook -i inventories/local playbooks/site.yml"
    ansible-playbook -i inventories/local playbooks/site.yml
    local password
    password="$(demo_password)"
    log "loading the demo data (manage.py load_demo)"
    docker exec --env DEMO_PASSWORD="$password" "$container" /usr/local/bin/comments-manage load_demo
    cat <<EOT

  The comment app is running: https://127.0.0.1:${https_port}/   (self-signed certificate: accept it once)
  Sign in as  alice / ${password}   or   bob / ${password}
  (http://127.0.0.1:${http_port}/ redirects there.)   Remove it: make demo-down

EOT
}

down() {
    if [[ "$(container_state "$container")" == absent ]]; then
        log "no container $container"
    else
        docker rm --force "$container" >/dev/null
        log "removed container $container"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
