"""What the TLS checks take from the shared test support (tests/support)."""

from __future__ import annotations

import sys
from pathlib import Path

# What the scenarios share is the package tests/support (the live client, the API client, the TLS settings, ...),
# imported as `support.<module>` by this folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
