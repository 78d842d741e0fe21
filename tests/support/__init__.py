"""What the tests against a deployed stack share: the Molecule scenarios' checks (molecule/*/tests), the bad-input
suite (tests/badinput) and the benchmark (bench/). Imported as `support.<module>`, with tests/ on sys.path: each
scenario's top conftest.py puts it there, tests/badinput/pytest.ini names it in `pythonpath`, bench/viewers.py adds
it itself.

- tls.py: insecure_tls(), the one client TLS context (the test hosts' certificates are not verified).
- api.py: Api, the REST client (one user's token, or a visitor), and Answer, what a call got or the lack of an answer.
- reconnect.py: the graph page's reconnect rules (back-off with full jitter, final close codes, the resume URL, the
  heartbeat), for every Python client that stands in for the page.
- live_client.py: a page-like viewer of a graph's live stream (resume, dedupe, gap fill, reload), a steady writer, and
  the accounts script that makes the test users and their tokens.
- trial.py: one fault or step under live viewers and a writer, and the count of what every viewer received.
- playbooks.py: running this repository's playbooks from a scenario, as an operator runs them.
- runbook.py: the commands of docs/runbook.md, read from it, for the scenarios that prove its procedures.
"""
