"""`python -m bench.report LABEL...`: Markdown table rows from bench/results/*.json."""

import json
import sys

from .__main__ import RESULTS


def _ms(summary: dict) -> str:
    if not summary or summary.get("p50") is None:
        return "-"
    return f"{summary['p50']:.0f} / {summary['p95']:.0f} / {summary['p99']:.0f}"


def _num(value, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _errors(errors: dict) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(errors.items())) or "0"


def _server_cpu(m: dict) -> str:
    """CPU per call of the server, or of each server process with several."""
    total = _num(m["server_cpu_ms_per_call"], ".0f")
    if not isinstance(m.get("servers"), list):
        return total
    each = " + ".join(_num(s["cpu_ms_per_call"], ".0f") for s in m["servers"])
    return f"{total} ({each})"


def calls_row(label: str, report: dict) -> str:
    """| label | config | reps | calls/s | server CPU/call ms | pg CPU/call ms
    | SQL/call | generator CPU/call ms (share of a core) | answer | ICE | set-up
    | errors | peak RSS MB | load |"""
    m = report["median"]
    loads = [r.get("load_avg_1m", 0) for r in report["runs"]]
    generator = (
        f"{_num(m.get('generator_cpu_ms_per_call'), '.0f')} "
        f"({_num(100 * m['generator_cpu_share'], '.0f')}%)"
    )
    return (
        f"| {label} | {report['config']} | {len(report['runs'])} "
        f"| {_num(m['calls_per_s'])} | {_server_cpu(m)} "
        f"| {_num(m.get('pg_cpu_ms_per_call'), '.0f')} "
        f"| {_num(m.get('sql_per_call'), '.1f')} | {generator} "
        f"| {_ms(m['answer_ms'])} | {_ms(m['ice_ms'])} | {_ms(m['setup_ms'])} "
        f"| {_errors(m['errors'])} | {_num(m['peak_rss_mb'], '.0f')} "
        f"| {_num(min(loads))}-{_num(max(loads))} |"
    )


def idle_rows(label: str, report: dict) -> list[str]:
    rows = []
    for run_no, run in enumerate(report["runs"], 1):
        for level, found in run.items():
            if level.isdigit():
                rows.append(
                    f"| {label} #{run_no} | {level} | {found['sockets']} "
                    f"| {found['connects_per_s']:.0f} | {found['rss_mb']:.0f} "
                    f"| {found['kb_per_socket']:.1f} | {_num(run['load_avg_1m'])} |"
                )
        if "after_hold" in run:
            hold = run["after_hold"]
            rows.append(
                f"| {label} #{run_no} after {hold['hold_s']:.0f} s | | {hold['open']} "
                f"open | {hold['answered_ping']} answered ping | | | |"
            )
    return rows


def fanout_rows(label: str, report: dict) -> list[str]:
    rows = []
    for run_no, run in enumerate(report["runs"], 1):
        for level, found in run.get("lobby", {}).items():
            if level.isdigit():
                rows.append(
                    f"| {label} #{run_no} | lobby | {found['sockets']} "
                    f"| {found['all_s_median']:.2f} | {found['all_s_max']:.2f} "
                    f"| {found['cpu_ms_median']:.0f} | {found['missing']} "
                    f"| {found['connects_per_s']:.0f} |"
                )
        if "queue" in run:
            q = run["queue"]
            rows.append(
                f"| {label} #{run_no} | queue | {q['sockets']} "
                f"| {q['all_s_median']:.2f} | {q['all_s_max']:.2f} "
                f"| {q['cpu_ms_median']:.0f} | {q['missing']} "
                f"| {q['connects_per_s']:.0f} |"
            )
    return rows


def main(labels: list[str]) -> None:
    for label in labels:
        report = json.loads((RESULTS / f"{label}.json").read_text())
        if report["scenario"] == "calls":
            print(calls_row(label, report))
        elif report["scenario"] == "idle":
            print("\n".join(idle_rows(label, report)))
        else:
            print("\n".join(fanout_rows(label, report)))


if __name__ == "__main__":
    main(sys.argv[1:])
