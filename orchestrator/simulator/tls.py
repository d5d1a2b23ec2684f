"""Certificates for the simulated fleet: one CA, one server certificate per cluster.

`FleetTls` generates a private CA with trustme, writes its certificate to `ca.pem` (the
bundle a client or an inventory's `tls.ca_bundle` trusts), issues each cluster a server
certificate valid for the cluster's IP address and `localhost`, and issues client
certificates whose subject CN is an ONTAP user name, for certificate authentication.

Server contexts *request* a client certificate but do not require one
(`ssl.CERT_OPTIONAL`): basic auth keeps working, and a client that presents a certificate
must present one signed by the fleet's CA, or the handshake fails, as on ONTAP.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_FILE_NAME = "ca.pem"


@dataclass(frozen=True)
class ClientCert:
    """A client certificate and its key on disk; `common_name` is the ONTAP user."""

    common_name: str
    cert_path: Path
    key_path: Path


class FleetTls:
    """A generated CA for one simulated fleet, with its files under `directory`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._ca = trustme.CA(organization_name="ontap-rekey simulator")
        self.ca_pem_path = directory / CA_FILE_NAME
        self._ca.cert_pem.write_to_path(str(self.ca_pem_path))

    def server_context(self, ip_address: str) -> ssl.SSLContext:
        """A server context with a fresh certificate for `ip_address` and `localhost`."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(ip_address, "localhost").configure_cert(context)
        # Request, verify, but do not require a client certificate (basic auth still works).
        context.verify_mode = ssl.CERT_OPTIONAL
        self._ca.configure_trust(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the fleet's CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_pem_path))

    def issue_client_cert(self, username: str) -> ClientCert:
        """Write a client certificate with CN `username` and its key; return their paths."""
        leaf = self._ca.issue_cert(common_name=username)
        cert_path = self.directory / f"client-{username}.pem"
        key_path = self.directory / f"client-{username}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert_path))
        leaf.private_key_pem.write_to_path(str(key_path))
        return ClientCert(common_name=username, cert_path=cert_path, key_path=key_path)


def peer_common_name(peer_cert: object) -> str | None:
    """The subject CN of a verified peer certificate as `SSLObject.getpeercert()` gives it."""
    if not isinstance(peer_cert, dict):
        return None
    for rdn in peer_cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
