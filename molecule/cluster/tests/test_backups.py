"""Off-host backups with pgBackRest (docs/runbook.md, "Backups with pgBackRest" and "Restore from the backup
repository") on the split site: the data host archives its WAL to the backup host's encrypted repository.

In order, as an operator would check it: `pgbackrest check` passes and the repository holds a full backup (the
runbook's commands, on the host it names); a comment's WAL reaches the repository within archive_timeout (the figure
is printed, not judged: the loss window when every db host is lost); the repository's files are not readable as plain
text; a differential backup and the verified restore run by their services; and a point-in-time restore through
playbooks/restore.yml brings back the comment written before the time and not the one after, with new epochs.
"""

# Testinfra checks are plain pytest asserts; the docker CLI is run with this test's arguments.
# ruff: noqa: S101, S603, S607

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import time

import pytest

from conftest import DATA, WEB, docker_exec
from support import runbook
from support.playbooks import run_playbook
from support.trial import Trial, wait_for

testinfra_hosts = [f"ansible://{WEB}"]
pytestmark = pytest.mark.usefixtures("host")

BACKUP = "cluster-backup"
STANZA = "comments"
REPOSITORY = "/var/lib/pgbackrest"
FIGURES: dict[str, object] = {}


def long_exec(container: str, command: str, timeout: float = 1200) -> str:
    """A shell command that may take minutes (a backup, a verified restore); a hang fails after `timeout`."""
    done = subprocess.run(
        ["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{container}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def psql(query: str) -> str:
    return docker_exec(DATA, f'runuser -u postgres -- psql -d comments -Atc "{query}"').strip()


def info() -> dict:
    out = docker_exec(BACKUP, f"runuser -u postgres -- pgbackrest --stanza={STANZA} --output=json info")
    return json.loads(out)[0]


def test_the_runbook_commands_check_the_archive_and_list_a_full_backup():
    outputs = {}
    for command in runbook.commands("Backups with pgBackRest"):
        if command.line.startswith("systemctl start"):
            continue  # run by the tests below, one at a time
        assert command.where == "backup", f"the runbook does not say where this runs: {command.line}"
        outputs[command.line] = long_exec(BACKUP, f"{command.line} 2>&1")
    print("\n" + "\n".join(f"{BACKUP}$ {line}\n{out}" for line, out in outputs.items()))
    check = runbook.command("Backups with pgBackRest", "runuser -u postgres -- pgbackrest --stanza=comments check")
    assert "check command end: completed successfully" in outputs[check.line], outputs[check.line]
    listing = runbook.command("Backups with pgBackRest", "runuser -u postgres -- pgbackrest --stanza=comments info")
    assert "status: ok" in outputs[listing.line], outputs[listing.line]
    assert "full backup:" in outputs[listing.line], outputs[listing.line]
    for job in ("full", "diff", "check", "verify"):
        assert f"pgbackrest-{job}.timer" in outputs["systemctl list-timers 'pgbackrest-*'"]
    stanza = info()
    assert stanza["cipher"] == "aes-256-cbc", stanza
    assert any(backup["type"] == "full" for backup in stanza["backup"]), stanza


def test_the_data_host_archives_a_comment_within_the_archive_timeout(stack, tokens):
    """A comment committed, then the WAL segment holding it archived (PostgreSQL's archive_timeout switches it at the
    latest 60 s after); the delay is the loss window when every db host is lost at once."""
    marker = f"archived-{secrets.token_hex(8)}"
    trial = Trial(stack, tokens, "WAL archive delay", viewers=0, users=1)
    asyncio.run(trial.open_graph())
    posted = trial.api("writer-1").post(f"/api/v1/graphs/{trial.graph_id}/comments/", {"body": marker})
    assert posted.status == 201, posted.body
    begun = time.monotonic()
    # The segment holding the commit: everything up to the current insert position is in it or before it.
    segment = psql("SELECT pg_walfile_name(pg_current_wal_insert_lsn())")

    def archived() -> bool:
        last = psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
        # Same timeline: WAL file names sort as the positions they hold.
        return last[:24] >= segment

    asyncio.run(wait_for(archived, 600, f"WAL segment {segment} to be archived"))
    delay = round(time.monotonic() - begun, 1)
    FIGURES["wal_archive_delay_seconds"] = delay
    print(f"\nWAL archive delay: the segment {segment} of a comment archived {delay} s after its 201 (limit 60 s)")
    found = docker_exec(BACKUP, f"ls {REPOSITORY}/archive/{STANZA}/*/{segment[:16]}/ | grep '^{segment}-'")
    assert found.strip(), segment
    # The comment is plain text in the data host's WAL ...
    assert docker_exec(DATA, f"grep -rl {marker} /var/lib/postgresql/*/main/pg_wal/ || true").strip()
    FIGURES["marker"] = marker


def test_the_repository_is_not_readable_as_plain_text():
    """... and nowhere in the repository, whose every file is encrypted (OpenSSL's salted format)."""
    marker = FIGURES.get("marker")
    assert marker, "runs after the archive test"
    assert docker_exec(BACKUP, f"grep -rl {marker} {REPOSITORY} || true").strip() == ""
    # Every file of the repository, by whether it begins with "Salted__" (encrypted) or not.
    out = docker_exec(
        BACKUP,
        f"find {REPOSITORY} -type f -size +0 | while read -r f; do "
        '[ "$(head -c 8 "$f")" = Salted__ ] && echo "encrypted $f" || echo "plain $f"; done',
    )
    files = dict(reversed(line.split(" ", 1)) for line in out.splitlines())
    assert any("/archive/" in path for path in files), files
    assert any("/pg_data/" in path for path in files), files
    plain = sorted(path for path, state in files.items() if state != "encrypted")
    assert plain == [], plain
    print(f"\n{len(files)} repository files, each beginning with OpenSSL's 'Salted__' (aes-256-cbc)")


def test_a_differential_backup_and_the_verified_restore_run_by_their_services():
    begun = time.monotonic()
    long_exec(BACKUP, runbook.command("Backups with pgBackRest", "systemctl start pgbackrest-diff").line)
    diff_seconds = round(time.monotonic() - begun, 1)
    assert any(backup["type"] == "diff" for backup in info()["backup"]), info()
    comments = int(psql("SELECT count(*) FROM comments_comment"))

    begun = time.monotonic()
    long_exec(BACKUP, runbook.command("Backups with pgBackRest", "systemctl start pgbackrest-verify").line)
    verify_seconds = round(time.monotonic() - begun, 1)
    journal = docker_exec(BACKUP, runbook.command("Backups with pgBackRest", "journalctl -u").line)
    found = re.findall(r"verified restore: .* = (\d+)$", journal, re.MULTILINE)
    assert found, journal[-3000:]
    # The differential holds every comment committed before it.
    assert int(found[-1]) == comments, (found, comments)
    assert docker_exec(BACKUP, "ls -A /var/lib/pgbackrest-verify/").strip() in ("", "postgresql.log")
    FIGURES.update(diff_backup_seconds=diff_seconds, verified_restore_seconds=verify_seconds)
    print(f"\ndifferential backup: {diff_seconds} s; verified restore ({found[-1]} comments): {verify_seconds} s")


def test_a_point_in_time_restore_keeps_what_was_written_before_the_time_only(stack, tokens, playbooks):
    """restore.yml -e restore_from=repository -e restore_target_time=...: comment A (before the time) is back,
    comment B (after it) is not, and open pages get the new epoch."""
    trial = Trial(stack, tokens, "point-in-time restore", viewers=8, users=20)
    figures: dict = {}

    async def run() -> None:
        await trial.open_graph()
        try:
            await trial.connect_viewers(60)
            writer = trial.api("writer-1")
            path = f"/api/v1/graphs/{trial.graph_id}/comments/"
            before = await asyncio.to_thread(writer.post, path, {"body": "before the time"})
            assert before.status == 201, before.body
            await asyncio.sleep(1.5)
            # The database's clock (the containers share the controller's).
            target = (await asyncio.to_thread(docker_exec, DATA, "date -u '+%Y-%m-%d %H:%M:%S.%6N+00'")).strip()
            await asyncio.sleep(1.5)
            after = await asyncio.to_thread(writer.post, path, {"body": "after the time"})
            assert after.status == 201, after.body
            await wait_for(lambda: all(after.body["seq"] in v.applied for v in trial.viewers), 30, "the comment")

            begun = time.monotonic()
            output = await asyncio.to_thread(
                playbooks.run, "restore.yml", "-e", "restore_from=repository", "-e", f"restore_target_time='{target}'"
            )
            figures["restore_seconds"] = round(time.monotonic() - begun, 1)
            figures["target"] = target
            assert len(re.findall(r"New epochs for \d+ graphs", output)) == 1, output[-3000:]

            graph = await asyncio.to_thread(writer.get, f"/api/v1/graphs/{trial.graph_id}/")
            assert graph.status == 200, graph.body
            assert graph.body["epoch"] != trial.epoch
            assert graph.body["last_seq"] == before.body["seq"], (graph.body, before.body, after.body)
            kept = await asyncio.to_thread(writer.get, f"/api/v1/comments/{before.body['id']}/")
            assert kept.status == 200, kept.body
            gone = await asyncio.to_thread(writer.get, f"/api/v1/comments/{after.body['id']}/")
            assert gone.status == 404, gone.body
            figures["viewers_reload_seconds"] = round(
                await wait_for(
                    lambda: all(v.epoch == graph.body["epoch"] and v.connected for v in trial.viewers),
                    120,
                    "viewers to reload",
                    trial.status,
                ),
                1,
            )
            assert all(v.resets for v in trial.viewers), trial.status()
        finally:
            await asyncio.gather(*(viewer.stop() for viewer in trial.viewers))

    asyncio.run(run())
    FIGURES["point_in_time_restore"] = figures
    print(f"\npoint-in-time restore: {json.dumps(figures)}")
    # The restored cluster archives again, on its new timeline.
    check = long_exec(BACKUP, f"runuser -u postgres -- pgbackrest --stanza={STANZA} check 2>&1")
    assert "completed successfully" in check, check
    print(f"\nbackups with pgBackRest: {json.dumps(FIGURES)}")


@pytest.mark.parametrize(
    ("case", "extra", "said"),
    [
        ("no key", ["-e", "pgbackrest_repository_cipher_pass="], "pgbackrest_repository_cipher_pass"),
        ("a retention of 0 days", ["-e", "pgbackrest_repository_retention_full_days=0"], "keeps no full backup"),
        ("the backup host also a db host", [], "a repository on a db host is lost with it"),
    ],
)
def test_site_yml_refuses_a_backup_repository_that_cannot_work_before_changing_anything(case, extra, said, tmp_path):
    inventories = []
    if case == "the backup host also a db host":
        added = tmp_path / "backup-on-db.yml"
        added.write_text(f"---\ndb:\n  hosts:\n    {BACKUP}:\n")
        inventories.append(str(added))
    done = run_playbook("site.yml", *extra, inventories=inventories)
    # Without colours (molecule's ANSIBLE_FORCE_COLOR reaches the playbook), and the message as one line.
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.output)
    assert done.rc != 0, f"{case}: site.yml did not refuse:\n{text[-3000:]}"
    assert said in " ".join(text.split()), f"{case}:\n{text[-3000:]}"
    for host in (BACKUP, DATA, WEB):
        changed = re.search(rf"^{host}\s*:\s*ok=\d+\s+changed=(\d+)", text, re.MULTILINE)
        assert changed, f"{case}: no recap for {host}:\n{text[-3000:]}"
        assert changed.group(1) == "0", f"{case}: {host} changed:\n{text[-3000:]}"
    print(f"\n{case}: refused in {done.seconds:.0f} s, no host changed")
