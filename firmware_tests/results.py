"""Results of a conformance run and their renderings: text for the terminal, JUnit XML, HTML."""

from __future__ import annotations

import html
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["pass", "fail", "skip"]


@dataclass(slots=True)
class CheckResult:
    id: str  # "mdns.txt_schema", "command.climate.set_temperature"
    title: str
    status: Status
    message: str = ""
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(slots=True)
class Report:
    target: str
    profile: str
    started: float = field(default_factory=time.time)
    results: list[CheckResult] = field(default_factory=list)
    device: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.results)

    def get(self, check_id: str) -> CheckResult | None:
        return next((r for r in self.results if r.id == check_id), None)

    def text(self) -> str:
        lines = [f"Conformance report for {self.target} (profile {self.profile})"]
        if self.device:
            lines.append("Device: " + ", ".join(f"{k}={v}" for k, v in self.device.items()))
        for r in self.results:
            lines.append(f"  {r.status.upper():4}  {r.id:<44} {r.message}")
            lines.extend(f"          - {d}" for d in r.details)
        passed = sum(r.status == "pass" for r in self.results)
        skipped = sum(r.status == "skip" for r in self.results)
        verdict = "CONFORMS" if self.ok else "DOES NOT CONFORM"
        lines.append(f"{verdict}: {passed} passed, {len(self.failed)} failed, {skipped} skipped")
        return "\n".join(lines)

    def junit_xml(self) -> str:
        suite = ET.Element("testsuite", name=f"qoap-conformance {self.target}", tests=str(len(self.results)),
                           failures=str(len(self.failed)), skipped=str(sum(r.status == "skip" for r in self.results)),
                           timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.started)),
                           time=f"{sum(r.seconds for r in self.results):.3f}")
        for r in self.results:
            case = ET.SubElement(suite, "testcase", classname=r.id.split(".", 1)[0], name=r.id, time=f"{r.seconds:.3f}")
            if r.status == "fail":
                failure = ET.SubElement(case, "failure", message=r.message)
                failure.text = "\n".join(r.details) or r.message
            elif r.status == "skip":
                ET.SubElement(case, "skipped", message=r.message)
        suites = ET.Element("testsuites")
        suites.append(suite)
        return ET.tostring(suites, encoding="unicode", xml_declaration=True)

    def html(self) -> str:
        rows = []
        for r in self.results:
            details = "".join(f"<li>{html.escape(d)}</li>" for d in r.details)
            rows.append(f'<tr class="{r.status}"><td>{r.status.upper()}</td><td><code>{html.escape(r.id)}</code></td>'
                        f"<td>{html.escape(r.title)}</td><td>{html.escape(r.message)}<ul>{details}</ul></td>"
                        f"<td>{r.seconds:.2f}s</td></tr>")
        verdict = "Conforms" if self.ok else "Does not conform"
        device = html.escape(", ".join(f"{k}={v}" for k, v in self.device.items()))
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>QOAP conformance: {html.escape(self.target)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;vertical-align:top}}tr.pass td:first-child{{color:#080}}tr.fail td:first-child{{color:#c00;
font-weight:bold}}tr.skip td:first-child{{color:#888}}</style></head>
<body><h1>{verdict}</h1><p>Target <code>{html.escape(self.target)}</code>, profile {html.escape(self.profile)}.
{device}</p>
<table><tr><th>Result</th><th>Check</th><th>What</th><th>Message</th><th>Time</th></tr>
{"".join(rows)}
</table></body></html>
"""
