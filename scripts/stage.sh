#!/usr/bin/env bash
# Run one stage of the build, print how long it took, and record it for the summary.
#
# Usage: scripts/stage.sh NAME COMMAND [ARGS...]
# Appends "NAME<TAB>ok|FAIL<TAB>SECONDS<TAB>REPORTS" to build/stages.tsv, where REPORTS lists
# (comma-separated) the JUnit files under build/junit/ that the stage wrote, so that
# scripts/junit-summary.py can tell a stage that failed in its tests from one that failed
# before any test ran. The exit status is the command's.
set -uo pipefail

name="$1"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "${root}/build/junit"
marker="$(mktemp "${root}/build/.stage-${name}.XXXXXX")"
start="$(date +%s.%N)"

printf '\n===> %s: %s\n' "${name}" "$*"
"$@"
rc=$?

seconds="$(awk -v s="${start}" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')"
reports="$(find "${root}/build/junit" -maxdepth 1 -name '*.xml' -newer "${marker}" -printf '%f\n' \
    | sort | paste -sd, -)"
rm -f "${marker}"
status=ok
((rc == 0)) || status=FAIL
printf '%s\t%s\t%s\t%s\n' "${name}" "${status}" "${seconds}" "${reports}" >>"${root}/build/stages.tsv"
printf '<=== %s: %s in %ss\n' "${name}" "${status}" "${seconds}"
exit "${rc}"
