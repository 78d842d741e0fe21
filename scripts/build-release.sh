#!/usr/bin/env bash
# Build the release archive of the comment app on the controller: app/ and requirements/app.txt as a deterministic
# tar.gz (sorted names, mtime 0, owner 0, normalised modes, gzip without name or time), so the same source always
# gives the same bytes. Its version is the first 12 hex digits of its sha256, and the servers unpack it into
# /srv/comments/releases/<version>: a new version exactly when the code changed.
#
# Writes build/release/comments-<version>.tar.gz and prints one JSON line on stdout:
#   {"archive": "/abs/path.tar.gz", "version": "0123456789ab", "created": true}
# ("created": false when that archive was already there). The playbooks run it; it is safe to run any time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/build/release"
mkdir -p "$out"

tmp="$(mktemp "$out/.comments.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

# LC_ALL=C: --sort=name compares bytes, whatever the caller's locale. Every file under app/ goes in, not only the
# Python: the app reads some beside its modules (templates, live/lua/*.lua), so filter by name only what is built.
LC_ALL=C tar --create --file=- --directory="$root" \
    --format=gnu --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --mode='u+rwX,go+rX,go-w' \
    --exclude='__pycache__' --exclude='*.pyc' --exclude='.pytest_cache' --exclude='*.sqlite3' \
    --anchored --exclude='app/static' --no-anchored \
    app requirements/app.txt \
    | gzip -9 --no-name >"$tmp"

version="$(sha256sum "$tmp" | cut -c1-12)"
archive="$out/comments-$version.tar.gz"
if [[ -e "$archive" ]]; then
    created=false
else
    chmod 0644 "$tmp"
    mv "$tmp" "$archive"
    created=true
fi
echo "build-release: $archive (created: $created)" >&2
printf '{"archive": "%s", "version": "%s", "created": %s}\n' "$archive" "$version" "$created"
