"""Inside a loopback-only network namespace: a real coturn, and calls through it.

Run by tests/turn/test_turn_relay.py as
`unshare --net python relay_probe.py < plan.json`. It brings `lo` up, starts
Debian's coturn with the repo's deploy/turnserver.conf plus the test's
overrides, tries what the plan asks and prints one JSON report on stdout.
Nothing here can reach a network other than this namespace's loopback.
"""

import asyncio
import fractions
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aioice import stun
from aioice.turn import TurnClientUdpProtocol
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from av import VideoFrame

CONF = Path(__file__).resolve().parents[2] / "deploy" / "turnserver.conf"
HOST = "127.0.0.1"
FRAMES_WANTED = 30


def start_coturn(plan: dict, workdir: str, extra: tuple = ()) -> subprocess.Popen:
    """coturn on loopback as the plan says; `extra` adds or overrides options."""
    # The child keeps its own copy of the log's descriptor.
    with open(Path(workdir) / "coturn.log", "w") as log:
        return subprocess.Popen(
            [
                "/usr/bin/turnserver",
                "-c",
                str(CONF),
                f"--static-auth-secret={plan['secret']}",
                f"--realm={plan['realm']}",
                f"--listening-ip={HOST}",
                f"--relay-ip={HOST}",
                f"--listening-port={plan['port']}",
                "--no-tls",
                "--no-dtls",
                f"--pidfile={workdir}/turnserver.pid",
                f"--userdb={workdir}/turndb",
                # Test only: the two peers live on this loopback, which the
                # production config (rightly) refuses to relay to.
                "--allow-loopback-peers",
                f"--allowed-peer-ip={HOST}",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def udp_port_bound(port: int) -> bool:
    rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(row.split()[1].endswith(f":{port:04X}") for row in rows)


async def wait_for_port(port: int, coturn: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while not udp_port_bound(port):
        if coturn.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("coturn did not start")
        await asyncio.sleep(0.05)


async def turn_client(port: int, username: str, password: str):
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: TurnClientUdpProtocol(
            (HOST, port),
            username=username,
            password=password,
            lifetime=600,
            channel_refresh_time=500,
        ),
        remote_addr=(HOST, port),
    )
    return protocol


def turn_of(servers: list[dict]) -> dict:
    return next(server for server in servers if "username" in server)


async def allocation_error(port: int, server: dict) -> int | None:
    """The error code of an allocation with these credentials (None: allocated)."""
    client = await turn_client(port, server["username"], server["credential"])
    try:
        await client.connect()
    except stun.TransactionFailed as failure:
        return failure.response.attributes["ERROR-CODE"][0]
    finally:
        await client.delete()
    return None


async def peer_permission_error(port: int, server: dict, peer: str) -> int | None:
    """The error code of a channel to `peer` through a fresh allocation."""
    client = await turn_client(port, server["username"], server["credential"])
    try:
        await client.connect()
        await client.channel_bind(0x4000, (peer, 9))
    except stun.TransactionFailed as failure:
        return failure.response.attributes["ERROR-CODE"][0]
    finally:
        await client.delete()
    return None


class SmallVideo(VideoStreamTrack):
    """Tiny frames: enough to prove media flows without loading the CPU."""

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=64, height=48)
        for plane in frame.planes:
            plane.update(bytes([pts % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
        return frame


def relay_only(servers: list[dict]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[RTCIceServer(**server) for server in servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )


def candidate_types(pc: RTCPeerConnection) -> dict:
    ice = pc.getTransceivers()[0].receiver.transport.transport
    # aiortc exposes the nominated pair only on its ICE connection.
    pair = ice._connection._nominated.get(1)
    return {
        "local": sorted({c.type for c in ice.iceGatherer.getLocalCandidates()}),
        "remote": sorted({c.type for c in ice.getRemoteCandidates()}),
        "selected": [pair.local_candidate.type, pair.remote_candidate.type]
        if pair
        else None,
    }


async def relay_call(caller_servers: list[dict], desk_servers: list[dict]) -> dict:
    caller = RTCPeerConnection(relay_only(caller_servers))
    desk = RTCPeerConnection(relay_only(desk_servers))
    received = asyncio.get_running_loop().create_future()

    @desk.on("track")
    def on_track(track):
        received.set_result(track)

    try:
        caller.addTrack(SmallVideo())
        await caller.setLocalDescription(await caller.createOffer())
        await desk.setRemoteDescription(caller.localDescription)
        await desk.setLocalDescription(await desk.createAnswer())
        await caller.setRemoteDescription(desk.localDescription)
        track = await asyncio.wait_for(received, 15)
        frames = 0
        async with asyncio.timeout(20):
            while frames < FRAMES_WANTED:
                frame = await track.recv()
                frames += 1
        return {
            "state": [caller.connectionState, desk.connectionState],
            "frames": frames,
            "last_frame_size": [frame.width, frame.height],
            "caller": candidate_types(caller),
            "desk": candidate_types(desk),
        }
    finally:
        await caller.close()
        await desk.close()


async def credential_check(port: int, servers: list[dict]) -> dict:
    """Whether these credentials allocate, and whether a private peer is refused."""
    error = await allocation_error(port, turn_of(servers))
    report = {"allocation_error": error}
    if error is None:
        report["private_peer_error"] = await peer_permission_error(
            port, turn_of(servers), "10.1.2.3"
        )
    return report


async def call_check(port: int, parties: dict) -> dict:
    return await relay_call(parties["caller"], parties["desk"])


CHECKS = {"credentials": credential_check, "call": call_check}


def interfaces() -> list[str]:
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    return sorted(line.split(":")[1].strip() for line in links.splitlines())


async def main(plan: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="coturn-") as workdir:
        coturn = start_coturn(plan, workdir)
        try:
            await wait_for_port(plan["port"], coturn)
            report = {"interfaces": interfaces()}
            for name, check in CHECKS.items():
                if name in plan:
                    report[name] = await check(plan["port"], plan[name])
        finally:
            coturn.terminate()
            coturn.wait(10)
        report["coturn_log"] = (Path(workdir) / "coturn.log").read_text()[-4000:]
    return report


if __name__ == "__main__":
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
