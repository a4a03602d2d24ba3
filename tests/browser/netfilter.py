"""Firewall rules inside the browser suite's own network namespace (nftables).

The suite runs in a namespace that has only loopback (scripts/test-browser.sh),
so these rules cut paths between the pages, the app and coturn on this
machine alone; the table is removed again when the block ends.
"""

import contextlib
import subprocess

TABLE = "consult_test"


def nft(script: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


@contextlib.contextmanager
def only(*rules: str):
    """Drop every packet this namespace sends except those `rules` accept
    (nft rule text, e.g. "tcp dport 8000 accept")."""
    accepted = "\n".join(f"    {rule}" for rule in rules)
    nft(
        f"""table inet {TABLE} {{
  chain output {{
    type filter hook output priority 0; policy drop;
{accepted}
  }}
}}"""
    )
    try:
        yield
    finally:
        lift()


def lift() -> None:
    """Remove the rules, if any (idempotent)."""
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)


def tcp_ports(*ports: int) -> list[str]:
    """Rules that keep TCP to and from these ports (the app's, Redis's) open."""
    listed = ", ".join(str(port) for port in ports)
    return [f"tcp dport {{ {listed} }} accept", f"tcp sport {{ {listed} }} accept"]
