"""The hostile-LAN figures in one JSON object: runs the three benchmarks that measure them and picks their headlines.

* ``connections_held_per_address`` / ``connections_held_overall`` (``bench/hostile_connections.py``): what one
  address, and all addresses together, hold before the hub refuses a connection;
* ``inbox_after_spoof_flood`` (``bench/hostile_inbox.py``): pending inbox entries and registry.db size after
  10,000 spoofed adverts;
* ``flood_rss_mb`` and ``revoke_to_closed_ms`` (``bench/hostile_tokens.py``): resident memory after a scoped
  token's flood of invented entity ids, and the time from revoking a token to its open sockets closed.

Each benchmark runs in its own process, one after the other (they would disturb each other's timings);
``full`` holds their whole output. Usage: python bench/hostile_lan.py [--runs R]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def run(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE / script), *args], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the timed parts (medians are reported)")
    args = parser.parse_args()
    connections = run("hostile_connections.py")
    inbox = run("hostile_inbox.py", "--runs", str(args.runs))
    tokens = run("hostile_tokens.py", "--runs", str(args.runs))
    print(json.dumps({
        "connections_held_per_address": connections.get("connections_held_per_address"),
        "connections_held_overall": connections.get("connections_held_overall"),
        "inbox_after_spoof_flood": inbox.get("capped"),
        "flood_rss_mb": tokens.get("flood_rss_mb"),
        "revoke_to_closed_ms": {"in_process": tokens.get("revoke_in_process_ms"), "cli": tokens.get("revoke_cli_ms")},
        "full": {"connections": connections, "inbox": inbox, "tokens": tokens},
    }, indent=2))


if __name__ == "__main__":
    main()
