#!/usr/bin/env bash
# Run the linters and record each as one test case in build/junit/lint.xml, so that a lint
# failure shows in the `make test` summary like any failing test.
#
# Usage: scripts/lint.sh [PYTHON_PATHS...]   (paths for ruff; default: app tests scripts bench)
# Configuration: .ansible-lint (profile: production, offline), .yamllint, pyproject.toml (ruff);
# The shell scripts (scripts/*.sh, bench/*.sh, .ci/run) are checked by ShellCheck with its defaults.
# role-docs: each role README's variables section must be what scripts/role-docs.py writes from the role's
# meta/argument_specs.yml (run scripts/role-docs.py to rewrite them).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}" || exit 1
venv="${root}/.venv/bin"
logs="${root}/build/lint"
junit="${root}/build/junit/lint.xml"
mkdir -p "${logs}" "$(dirname "${junit}")"

ruff_paths=("$@")
if ((${#ruff_paths[@]} == 0)); then
    for d in app tests scripts bench; do [[ -d "${d}" ]] && ruff_paths+=("${d}"); done
fi

results=()   # "name<TAB>rc<TAB>seconds"
run() {
    local name="$1" start rc seconds
    shift
    start="$(date +%s.%N)"
    printf -- '--- %s: %s\n' "${name}" "$*"
    "$@" >"${logs}/${name}.log" 2>&1
    rc=$?
    seconds="$(awk -v s="${start}" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')"
    if ((rc == 0)); then
        printf -- '    ok (%ss)\n' "${seconds}"
    else
        printf -- '    FAILED (exit %s, %ss):\n' "${rc}" "${seconds}"
        sed 's/^/    /' "${logs}/${name}.log" | tail -n 60
    fi
    results+=("${name}"$'\t'"${rc}"$'\t'"${seconds}")
}

run ansible-lint "${venv}/ansible-lint" --nocolor
run yamllint "${venv}/yamllint" --strict .
run role-docs "${venv}/python3" scripts/role-docs.py --check
mapfile -t shell_scripts < <(find scripts bench .ci -type f \( -name '*.sh' -o -path .ci/run \) | sort)
run shellcheck shellcheck --external-sources "${shell_scripts[@]}"
run ruff "${venv}/ruff" check --no-cache --output-format concise "${ruff_paths[@]}"

printf '%s\n' "${results[@]}" | python3 -c '
import sys
import xml.etree.ElementTree as ET

logs, out = sys.argv[1], sys.argv[2]
suite = ET.Element("testsuite", name="lint")
failures = 0
total = 0.0
for line in sys.stdin.read().splitlines():
    name, rc, seconds = line.split("\t")
    total += float(seconds)
    case = ET.SubElement(suite, "testcase", classname="lint", name=name, time=seconds)
    if rc != "0":
        failures += 1
        with open(f"{logs}/{name}.log", errors="replace") as f:
            text = f.read()
        failure = ET.SubElement(case, "failure", message=f"{name} exited {rc}")
        failure.text = text[-20000:]
suite.set("tests", str(len(suite)))
suite.set("failures", str(failures))
suite.set("errors", "0")
suite.set("skipped", "0")
suite.set("time", f"{total:.2f}")
root = ET.Element("testsuites")
root.append(suite)
ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
sys.exit(1 if failures else 0)
' "${logs}" "${junit}"
