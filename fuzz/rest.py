"""REST bodies: schemathesis generates requests from the hub's own /api/openapi.json.

A real hub (virtual appliances, API on loopback) runs in this process; schemathesis runs against it
with an admin token. A bug is a 5xx answer, an answer that breaks the OpenAPI document, or an
exception the hub logged; afterwards the hub must still answer. Used by ``fuzz/run.py rest``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Ours only: aiohttp logs its own parser's refusals (400 for a NUL in a header) with a traceback.
        if record.exc_info and record.name.startswith(("qilu_hub", "qilu_hub.drivers")):
            self.messages.append(record.getMessage() + "\n" + logging.Formatter().formatException(record.exc_info))


async def run(seconds: float) -> dict[str, Any]:
    import aiohttp

    from qilu_hub import Hub, Scopes
    from qilu_hub.api import ApiServer, LoginLimiter
    from qilu_hub.config import load_config
    from qilu_hub.virtual import VirtualAppliances

    errors = _Errors()
    logging.getLogger().addHandler(errors)
    config_dir = Path(tempfile.mkdtemp(prefix="fuzz-rest-"))
    hub = Hub(config_dir, load_config(config_dir))
    hub.add_component(VirtualAppliances(animate=False))
    api = ApiServer("127.0.0.1", 0, login_limiter=LoginLimiter(max_failures=10**6))
    hub.add_component(api)
    await hub.async_start()
    _, token = hub.tokens.create("schemathesis", Scopes(admin=True))
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    report = config_dir / "report"
    try:
        proc = await asyncio.create_subprocess_exec(
            cli, "run", f"{api.url}/api/openapi.json", "-H", f"Authorization: Bearer {token}",
            "--checks", CHECKS, "--max-time", str(int(seconds)), "--max-examples", "100000",
            "--report", "ndjson", "--report-dir", str(report), "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=config_dir)  # schemathesis keeps its example database in the working directory
        out, _ = await proc.communicate()
        text = out.decode("utf-8", "replace")
        async with aiohttp.ClientSession() as session, session.get(
                f"{api.url}/api/", headers={"Authorization": f"Bearer {token}"}) as resp:
            alive = resp.status == 200
    finally:
        await hub.async_stop()
    generated = re.search(r"(\d+) generated", text)
    failures = [ln.strip() for ln in text.splitlines() if re.match(r"\s*[-_]+ .* [-_]+$", ln) or "Failed" in ln]
    return {"target": "rest", "seconds": seconds, "inputs_tried": int(generated.group(1)) if generated else 0,
            "exit_code": proc.returncode, "hub_alive": alive, "logged_exceptions": errors.messages[:10],
            "failures": failures[:40], "summary": text.strip().splitlines()[-12:]}
