"""deploy/nginx: slow and greedy clients are cut off in front of the app.

Debian's nginx (scripts/ensure-tools.sh installs it) runs the real template,
rendered as the nginx image renders it (every `${NAME}` given is filled in),
with short NGINX_* limits so that each case takes a second or two. What only
the deployment can provide is swapped for loopback stand-ins, each swap
checked: ports, a self-signed certificate, a tiny upstream for `app:8000`,
and Debian's nginx 1.22 spelling of HTTP/2 (the image runs 1.28).
"""

import http.server
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy/nginx/consult.conf.template"
HOST = "127.0.0.1"
TIMEOUT = 1  # seconds: every NGINX_*_TIMEOUT in these tests
SHORT = {
    "NGINX_CLIENT_HEADER_TIMEOUT": f"{TIMEOUT}s",
    "NGINX_CLIENT_BODY_TIMEOUT": f"{TIMEOUT}s",
    "NGINX_SEND_TIMEOUT": f"{TIMEOUT}s",
    "NGINX_KEEPALIVE_TIMEOUT": f"{TIMEOUT}s",
    "NGINX_CONNECTIONS_PER_ADDRESS": "3",
}
# Cut off within the timeout plus nginx's timer granularity and our polling.
CUT_WITHIN = TIMEOUT + 2


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if not found:
        pytest.fail("no nginx: scripts/test.sh installs Debian's nginx")
    return found


def render(variables: dict[str, str]) -> str:
    """The template as the nginx image renders it: each defined ${NAME} filled."""
    text = TEMPLATE.read_text()
    for name, value in variables.items():
        text = text.replace("${" + name + "}", value)
    left = set(re.findall(r"\$\{(\w+)\}", text))
    assert not left, f"variables nobody gives: {left}"
    return text


def swap(text: str, old: str, new: str) -> str:
    assert old in text, f"the template no longer holds {old!r}"
    return text.replace(old, new)


class Upstream(http.server.ThreadingHTTPServer):
    """The app's stand-in: answers every request 200, after reading its body."""

    daemon_threads = True

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b"app\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass


@pytest.fixture(scope="module")
def upstream():
    server = Upstream((HOST, 0), Upstream.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-keyout", str(where / "privkey.pem")),
            *("-out", str(where / "fullchain.pem")),
            *("-days", "1", "-subj", "/CN=localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return where


class Nginx:
    def __init__(self, work: Path, http_port: int, https_port: int):
        self.work, self.http_port, self.https_port = work, http_port, https_port
        self.process: subprocess.Popen | None = None

    def command(self, *args: str) -> list[str]:
        conf = str(self.work / "nginx.conf")
        return [nginx_binary(), "-p", str(self.work), "-c", conf, "-e", "stderr", *args]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=(self.work / "stderr.log").open("wb"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.https_port), timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None, self.log()
                time.sleep(0.05)
        pytest.fail(f"nginx did not come up: {self.log()}")

    def log(self) -> str:
        return (self.work / "stderr.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def connect(self) -> ssl.SSLSocket:
        """A TLS connection to the app's server (HTTP/1.1)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((HOST, self.https_port), timeout=10)
        return context.wrap_socket(raw, server_hostname="localhost")


def configure(work: Path, variables: dict, upstream: int, certificate: Path) -> Nginx:
    """nginx.conf in `work` serving the rendered template on free loopback ports."""
    server = Nginx(work, free_port(), free_port())
    site = render({"DOMAIN": "localhost", **variables})
    site = swap(site, "resolver 127.0.0.11 valid=10s ipv6=off;", "")
    site = swap(site, "server app:8000 resolve;", f"server {HOST}:{upstream};")
    site = swap(site, "listen 80;", f"listen {HOST}:{server.http_port};")
    site = swap(
        site, "listen 443 ssl;", f"listen {HOST}:{server.https_port} ssl http2;"
    )
    site = swap(site, "    http2 on;\n", "")  # 1.25+ only; the listen flag above
    site = swap(site, "/etc/nginx/certs/", f"{certificate}/")
    (work / "site.conf").write_text(site)
    (work / "logs").mkdir(exist_ok=True)
    # The nginx image's nginx.conf, as far as it matters here: it sets
    # keepalive_timeout at the http level, as Debian's does.
    (work / "nginx.conf").write_text(
        f"""
        daemon off;
        master_process off;
        pid {work}/nginx.pid;
        error_log stderr warn;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            keepalive_timeout 65;
            client_body_temp_path {work}/body;
            proxy_temp_path {work}/proxy;
            include {work}/site.conf;
        }}
        """
    )
    return server


@pytest.fixture
def nginx(tmp_path, upstream, certificate):
    """nginx serving the rendered template, with SHORT limits, in front of the
    stand-in upstream."""
    server = configure(tmp_path, SHORT, upstream, certificate)
    server.start()
    yield server
    server.stop()


def closed_after(conn: ssl.SSLSocket, within: float) -> tuple[float, bytes]:
    """Read until the server closes: (seconds it took, what it sent)."""
    conn.settimeout(within)
    started, got = time.monotonic(), b""
    try:
        while chunk := conn.recv(4096):
            got += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    except TimeoutError:
        pytest.fail(f"still open after {within} s; got {got!r}")
    return time.monotonic() - started, got


def test_the_template_with_the_limits_compose_gives_is_valid(
    tmp_path, upstream, certificate
):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    given = compose["services"]["proxy"]["environment"]
    limits = {name: str(given[name]) for name in SHORT}

    checked = subprocess.run(
        configure(tmp_path, limits, upstream, certificate).command("-t"),
        capture_output=True,
        text=True,
    )

    assert checked.returncode == 0, checked.stderr
    assert limits["NGINX_CLIENT_HEADER_TIMEOUT"] == "10s"
    assert int(limits["NGINX_CONNECTIONS_PER_ADDRESS"]) <= 40


@pytest.mark.parametrize(
    "half_sent",
    [
        b"GET /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n",
        b"GET /ws/call/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
    ],
    ids=["request", "websocket-upgrade"],
)
def test_a_half_sent_header_is_cut_after_the_header_timeout(nginx, half_sent):
    conn = nginx.connect()
    conn.sendall(half_sent)

    took, _ = closed_after(conn, CUT_WITHIN)

    assert took >= TIMEOUT * 0.8, "cut before its time"
    conn.close()


def test_a_body_sent_a_byte_at_a_time_too_slowly_is_cut(nginx):
    conn = nginx.connect()
    conn.sendall(
        b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100\r\n\r\nu"
    )

    took, answer = closed_after(conn, CUT_WITHIN)

    assert took >= TIMEOUT * 0.8
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    conn.close()


def test_a_whole_request_still_reaches_the_app(nginx):
    conn = nginx.connect()
    conn.sendall(
        b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    conn.settimeout(5)

    assert conn.recv(4096).startswith(b"HTTP/1.1 200")
    # Kept alive, but not for ever: idle past the keep-alive timeout, it closes.
    took, _ = closed_after(conn, CUT_WITHIN)
    assert took >= TIMEOUT * 0.8
    conn.close()


def test_connections_over_the_cap_per_address_are_refused(nginx):
    cap = int(SHORT["NGINX_CONNECTIONS_PER_ADDRESS"])
    # Requests whose headers are in and whose bodies are still coming: each
    # holds one of the address's connections.
    held = [nginx.connect() for _ in range(cap)]
    for conn in held:
        conn.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
    time.sleep(0.2)
    over = nginx.connect()
    over.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    over.settimeout(5)

    assert over.recv(4096).startswith(b"HTTP/1.1 429"), "over the cap, yet served"
    for conn in [*held, over]:
        conn.close()
    time.sleep(0.2)  # nginx notices the closes
    again = nginx.connect()
    again.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    again.settimeout(5)
    assert again.recv(4096).startswith(b"HTTP/1.1 200")
    again.close()
