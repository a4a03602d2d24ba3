"""The dependency audit says what it could not audit and fails when it audits
nothing (scripts/audit_report.py reads pip-audit's JSON report)."""

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.live import ROOT

SCRIPT = ROOT / "scripts" / "audit_report.py"
spec = importlib.util.spec_from_file_location("audit_report", SCRIPT)
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)

NOT_FOUND = "Dependency not found on PyPI and could not be audited: {} (1.0)"


def report(*, clean=(), vulnerable=(), skipped=()) -> dict:
    deps = [{"name": n, "version": "1.0", "vulns": []} for n in clean]
    deps += [
        {"name": n, "version": "1.0", "vulns": [{"id": "PYSEC-1", "fix_versions": []}]}
        for n in vulnerable
    ]
    deps += [{"name": n, "skip_reason": NOT_FOUND.format(n)} for n in skipped]
    return {"dependencies": deps, "fixes": []}


def judge(data, *, reachable=True, strict=False):
    summary = None if data is None else audit.summarise(data)
    return audit.verdict(summary, service_reachable=reachable, strict=strict)


def test_everything_audited_and_clean_passes():
    code, lines = judge(report(clean=["django", "redis"]))
    assert code == audit.PASS
    assert "audited 2 of 2 packages" in lines[0]


def test_a_vulnerability_fails_and_is_named():
    code, lines = judge(report(clean=["redis"], vulnerable=["django"]))
    assert code == audit.VULNERABLE
    assert any("VULNERABLE django 1.0: PYSEC-1" in line for line in lines)


def test_what_could_not_be_audited_is_listed():
    code, lines = judge(report(clean=["django"], skipped=["private-lib"]))
    assert code == audit.PASS
    assert "audited 1 of 2 packages" in lines[0]
    assert any(line.startswith("  NOT AUDITED private-lib:") for line in lines)
    assert any("1 packages were not audited" in line for line in lines)


def test_auditing_nothing_fails_when_the_service_answers():
    code, lines = judge(report(skipped=["django", "redis"]), reachable=True)
    assert code == audit.AUDITED_NOTHING
    assert "nothing was audited" in lines[-1]


def test_no_report_at_all_fails_when_the_service_answers():
    assert judge(None, reachable=True)[0] == audit.AUDITED_NOTHING


@pytest.mark.parametrize("data", [None, report(skipped=["django", "redis"])])
def test_an_unreachable_service_is_said_loudly_to_be_no_pass(data):
    code, lines = judge(data, reachable=False)
    text = "\n".join(lines)
    assert code == audit.PASS
    assert "DEPENDENCY AUDIT NOT RUN" in text and "NOT a pass" in text

    assert judge(data, reachable=False, strict=True)[0] == audit.NOT_AUDITED


def test_the_script_reads_a_report_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report(clean=["redis"], vulnerable=["django"])))
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == audit.VULNERABLE
    assert "VULNERABLE django" in run.stdout
