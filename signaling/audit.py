"""What each socket did, for the events log: who, what, when; never what was said.

Only the message type and identifiers are logged; SDP, candidates, names,
reasons and chat never are. `ping`, `ice` and `stats` are left out: they are
many and tell nothing about the queue.
"""

from consult import logs

QUIET = frozenset({"ping", "ice", "stats"})
# Fields of a message that identify something and may be logged as they are.
IDENTIFIERS = ("consultant", "ticket", "status")


def handled(consumer, message) -> None:
    if message.type in QUIET:
        return
    own = getattr(consumer, "consultant", None)
    fields = {k: message.fields.get(k) for k in IDENTIFIERS}
    if own is not None:
        fields["consultant"] = own.slug
    logs.event(
        f"{consumer.role}.{message.type}",
        role=consumer.role,
        address=consumer.scope.get("client_address"),
        channel=consumer.channel_name,
        **fields,
    )


def refused(consumer, code: str) -> None:
    logs.event(
        f"{consumer.role}.error",
        role=consumer.role,
        address=consumer.scope.get("client_address"),
        channel=consumer.channel_name,
        code=code,
    )
