"""`cellops serve` as an admin runs it: its log, HTTPS with a certificate, a LAN address."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .support import TeamBackend, free_port, terminate

LISTENING = "cellops team backend listening on"
LOOPBACK_WARNING = "members on other machines cannot reach it"


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    log_path: Path
    token: str

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        terminate(self.proc)


def start_serve(tmp: Path, *args: str) -> Serve:
    """`cellops serve ARGS` in a subprocess, once its listening line is logged."""
    db = f"sqlite:///{tmp / 'team.db'}"
    token = TeamBackend(db, tmp / "artifacts").add_user("ada")
    log_path = tmp / "serve.log"
    cmd = [sys.executable, "-m", "cellops_server.cli", "serve", "--db", db,
           "--artifacts", str(tmp / "artifacts"), *args]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    serve = Serve(proc, log_path, token)
    deadline = time.monotonic() + 30
    while LISTENING not in serve.log():
        if proc.poll() is not None or time.monotonic() > deadline:
            serve.stop()
            raise RuntimeError(f"cellops serve did not start:\n{serve.log()[-3000:]}")
        time.sleep(0.1)
    return serve


def direct() -> requests.Session:
    """A client that never goes through a proxy: every address here is this machine's."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, str]]:
    port = free_port()
    serve = start_serve(tmp_path_factory.mktemp("loopback"), "--port", str(port))
    yield serve, f"http://127.0.0.1:{port}/cellops/api/v1"
    serve.stop()


def test_log_says_each_thing_once(loopback: tuple[Serve, str]) -> None:
    serve, api = loopback
    auth = {"Authorization": f"token {serve.token}"}
    missing = direct().get(f"{api}/runs/987654", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]
    refused = direct().get(f"{api}/runs")  # no token
    assert refused.status_code == 401
    elsewhere = direct().get(api.replace("/cellops/api/v1", "/api/v1/runs"), headers=auth)
    assert elsewhere.status_code == 404
    assert "/cellops/api/v1/" in elsewhere.json()["error"]  # JSON that says where the API is

    # The access log is written after the response: wait for the last line, then count.
    deadline = time.monotonic() + 10
    while "GET /api/v1/runs (" not in serve.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = serve.log().splitlines()
    assert sum(LISTENING in line for line in lines) == 1, lines
    assert sum("/runs/987654" in line for line in lines) == 1, lines
    assert sum("GET /cellops/api/v1/runs (" in line for line in lines) == 1, lines
    assert sum("GET /api/v1/runs (" in line for line in lines) == 1, lines
    # The one line of a refusal says why, so nothing is lost by logging it once.
    (refusal,) = [line for line in lines if "GET /cellops/api/v1/runs (" in line]
    assert "401" in refusal and "personal token" in refusal
    # Bound to loopback (the default): the admin is told members elsewhere cannot connect.
    (warning,) = [line for line in lines if LOOPBACK_WARNING in line]
    assert "--host 0.0.0.0" in warning


def test_help_shows_every_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cellops_server.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    options = [line.split()[0] for line in out.splitlines() if line.strip().startswith("--")]
    assert "--host" in options and "--certfile" in options
    flat = " ".join(out.split())
    for option in ("--db", "--artifacts", "--host", "--port", "--max-artifact-size"):
        after = flat.split(f" {option} ", 1)[1]
        assert "(default:" in after.split(" --", 1)[0], f"{option} shows no default"
    assert "default: 127.0.0.1" in flat and "0.0.0.0" in flat


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cellops test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_serves_https_with_a_certificate_and_key(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    serve = start_serve(
        tmp_path, "--port", str(port), "--certfile", str(cert), "--keyfile", str(key)
    )
    try:
        assert f"https://127.0.0.1:{port}" in serve.log()
        api = f"https://127.0.0.1:{port}/cellops/api/v1"
        auth = {"Authorization": f"token {serve.token}"}
        r = direct().get(f"{api}/notebooks", headers=auth, verify=str(cert))
        assert r.status_code == 200 and r.json()["items"] == []
        with pytest.raises(requests.exceptions.SSLError):  # really TLS: an unknown CA fails
            direct().get(f"{api}/notebooks", headers=auth)
        with pytest.raises(requests.exceptions.ConnectionError):  # and no plain HTTP
            direct().get(f"http://127.0.0.1:{port}/cellops/api/v1/status", timeout=5)
    finally:
        serve.stop()


def test_tls_misconfiguration_is_a_clear_error(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    base = [sys.executable, "-m", "cellops_server.cli", "serve", "--port", str(free_port())]
    alone = subprocess.run([*base, "--certfile", str(cert)], capture_output=True, text=True)
    assert alone.returncode == 2 and "--certfile and --keyfile go together" in alone.stderr
    wrong = subprocess.run(
        [*base, "--certfile", str(cert), "--keyfile", str(cert)], capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "cannot use the TLS certificate" in wrong.stderr


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (from `hostname -I`)."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for word in out.split():
        address = ipaddress.ip_address(word)
        if address.version == 4 and not address.is_loopback:
            return word
    return None


def test_host_serves_members_on_a_non_loopback_address(tmp_path: Path) -> None:
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to bind")
    port = free_port()
    serve = start_serve(tmp_path, "--host", address, "--port", str(port))
    try:
        r = direct().get(
            f"http://{address}:{port}/cellops/api/v1/notebooks",
            headers={"Authorization": f"token {serve.token}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["items"] == []
        assert f"http://{address}:{port}" in serve.log()
        assert LOOPBACK_WARNING not in serve.log()  # reachable from elsewhere: no warning
    finally:
        serve.stop()
