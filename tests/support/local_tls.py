"""A throw-away certificate authority and TLS servers on 127.0.0.1, for checks that must
validate a certificate the way a browser does (preflight's wildcard check).

    ca = LocalCA()
    with ca.server("*.users.example.org") as server:   # presents a certificate for that name
        context = ca.client_context()                  # trusts only this CA
        ... connect to 127.0.0.1:server.port, wrap with server_hostname=...

Keys are EC P-256 (fast to make); certificates carry the extensions OpenSSL's strict
verification wants (basic constraints, key usage, subject and authority key identifiers).
"""

from __future__ import annotations

import contextlib
import datetime
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class LocalCA:
    def __init__(self, name: str = "eodh test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self._dir = tempfile.TemporaryDirectory(prefix="eodh-tls-")
        self.cert_file = Path(self._dir.name) / "ca.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def client_context(self) -> ssl.SSLContext:
        """A browser's check (hostname, chain, dates) trusting only this CA."""
        return ssl.create_default_context(cafile=str(self.cert_file))

    def leaf(self, *dns_names: str) -> tuple[Path, Path]:
        """(certificate file, key file) for `dns_names`, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(dns_names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        stem = Path(self._dir.name) / f"leaf-{cert.serial_number}"
        cert_file, key_file = stem.with_suffix(".pem"), stem.with_suffix(".key")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        return cert_file, key_file

    @contextlib.contextmanager
    def server(self, *dns_names: str) -> Iterator[TlsServer]:
        server = TlsServer(*self.leaf(*dns_names))
        try:
            yield server
        finally:
            server.close()

    def close(self) -> None:
        self._dir.cleanup()


class _Handshake(socketserver.BaseRequestHandler):
    server: TlsServer

    def handle(self) -> None:
        # The client's verdict is what the tests read; a refused handshake is normal here.
        with (
            contextlib.suppress(OSError),
            self.server.context.wrap_socket(self.request, server_side=True),
        ):
            pass


class TlsServer(socketserver.ThreadingTCPServer):
    """Completes a TLS handshake with every client, then closes; serves nothing else."""

    daemon_threads = True

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handshake)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert_file), str(key_file))
        self.port = self.server_address[1]
        # A short poll: shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
