"""Firewall rules inside the browser suite's own network namespace (nftables).

The suite runs in a namespace that has only loopback (scripts/test-browser.sh),
so these rules cut paths between the pages, the app and coturn on this
machine alone; the table is removed again when the block ends.

Packets are dropped on arrival (the input hook), as a firewall on the way
would drop them: the sender sees its packet leave. Dropping them on the way out
(the output hook) would instead fail the sender's sendto() with EPERM, which no
real network does, and coturn closes a relay socket on its first failed send:
a relay that once tried a blocked peer (the other browser's host candidate)
would relay nothing more.
"""

import contextlib
import subprocess

TABLE = "consult_test"


def nft(script: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


def table(rules: tuple[str, ...]) -> str:
    accepted = "\n".join(f"    {rule}" for rule in rules)
    return f"""table inet {TABLE} {{
  chain input {{
    type filter hook input priority 0; policy drop;
{accepted}
  }}
}}"""


@contextlib.contextmanager
def only(*rules: str):
    """Drop every packet that arrives in this namespace except those `rules`
    accept (nft rule text, e.g. "tcp dport 8000 accept")."""
    nft(table(rules))
    try:
        yield
    finally:
        lift()


def switch(*rules: str) -> None:
    """Inside `only`: these rules instead, in one step (no packet slips through
    while they change)."""
    nft(f"delete table inet {TABLE}\n{table(rules)}")


def lift() -> None:
    """Remove the rules, if any (idempotent)."""
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)


def tcp_ports(*ports: int) -> list[str]:
    """Rules that keep TCP to and from these ports (the app's, Redis's) open."""
    listed = ", ".join(str(port) for port in ports)
    return [f"tcp dport {{ {listed} }} accept", f"tcp sport {{ {listed} }} accept"]


def tcp_refused(*ports: int) -> list[str]:
    """Rules that refuse TCP to and from these ports at once, with a reset (as a
    closed port would), so that a connection to them fails rather than waits,
    and one already open breaks at its next packet."""
    listed = ", ".join(str(port) for port in ports)
    return [
        # The resets themselves must get through.
        f"tcp dport {{ {listed} }} tcp flags & rst == rst accept",
        f"tcp sport {{ {listed} }} tcp flags & rst == rst accept",
        f"tcp dport {{ {listed} }} reject with tcp reset",
        f"tcp sport {{ {listed} }} reject with tcp reset",
    ]
