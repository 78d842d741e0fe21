"""TLS as the tests' clients speak it to the test hosts: encrypted, the certificate not verified.

The hosts the tests reach (the Molecule instances, the demo, the benchmark's container) serve self-signed
certificates, or ones from a CA the controller does not trust (pebble); what a test checks is the site behind the
tunnel. molecule/tls checks the certificate itself, with its own tools (openssl, testssl.sh), not with this.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def insecure_tls() -> ssl.SSLContext:
    """The client TLS context of every test client: no hostname check, no certificate check.

    One context for the whole process (a thousand viewers share it; none of its callers changes it, and none may).
    Made from ssl.create_default_context() so that it otherwise keeps Python's client defaults (protocol versions,
    ciphers, SSLKEYLOGFILE for a packet capture)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
