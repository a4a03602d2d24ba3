"""Read pip-audit's JSON report and say honestly what was audited.

    python scripts/audit_report.py REPORT.json

Exit 0: every package audited, or some skipped (listed), none vulnerable.
Exit 1: known vulnerabilities. Exit 2: the vulnerability service answers,
yet nothing could be audited (or pip-audit failed). When the service cannot
be reached from this machine at all, nothing is audited and that is said
loudly, as NOT a pass: exit 0, or 3 with AUDIT_STRICT=1 (README, "Security").

Standard library only.
"""

import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# What pip-audit's default service asks (PyPI's JSON API, per release, which
# carries the release's known vulnerabilities), for a release that surely exists.
PROBE_URL = "https://pypi.org/pypi/django/4.2/json"

PASS, VULNERABLE, AUDITED_NOTHING, NOT_AUDITED = 0, 1, 2, 3


@dataclass
class Summary:
    audited: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    vulnerable: list[tuple[str, str, list[str]]] = field(default_factory=list)


def summarise(report: dict) -> Summary:
    """What pip-audit's `--format json` report says, package by package."""
    summary = Summary()
    for dependency in report.get("dependencies", []):
        name = dependency.get("name", "?")
        if dependency.get("skip_reason"):
            summary.skipped.append((name, dependency["skip_reason"]))
            continue
        summary.audited.append(name)
        vulns = dependency.get("vulns") or []
        if vulns:
            ids = [v.get("id", "?") for v in vulns]
            summary.vulnerable.append((name, dependency.get("version", "?"), ids))
    return summary


def verdict(
    summary: Summary | None, *, service_reachable: bool, strict: bool = False
) -> tuple[int, list[str]]:
    """The exit code and the lines to print (`summary` None: pip-audit gave none)."""
    lines = []
    if summary is not None:
        total = len(summary.audited) + len(summary.skipped)
        lines.append(f"pip-audit: audited {len(summary.audited)} of {total} packages")
        for name, reason in summary.skipped:
            lines.append(f"  NOT AUDITED {name}: {reason}")
        if summary.vulnerable:
            for name, version, ids in summary.vulnerable:
                lines.append(f"  VULNERABLE {name} {version}: {', '.join(ids)}")
            return VULNERABLE, lines
        if summary.audited:
            if summary.skipped:
                lines.append(
                    f"WARNING: {len(summary.skipped)} packages were not audited (above)"
                )
            return PASS, lines
    else:
        lines.append("pip-audit gave no report")
    if service_reachable:
        lines.append("FAIL: the vulnerability service answers, yet nothing was audited")
        return AUDITED_NOTHING, lines
    lines += [
        "!" * 72,
        "DEPENDENCY AUDIT NOT RUN: the vulnerability service cannot be reached",
        f"from this machine ({PROBE_URL}). Nothing was audited:",
        "this is NOT a pass. Run `bash scripts/audit.sh` where it can be reached.",
        "!" * 72,
    ]
    return (NOT_AUDITED if strict else PASS), lines


def service_reachable(url: str = PROBE_URL, timeout: float = 10) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    summary = None
    if path.exists() and path.stat().st_size:
        summary = summarise(json.loads(path.read_text()))
    code, lines = verdict(
        summary,
        service_reachable=service_reachable(),
        strict=os.environ.get("AUDIT_STRICT") == "1",
    )
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
