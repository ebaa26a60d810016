"""Local stand-ins for the identity endpoints the Bot Framework uses, for authentication tests. Everything
listens on 127.0.0.1 and nothing ever dials out.

* OpenID metadata (plain HTTP): ``/.well-known/openid-configuration`` and ``/keys``, the JWKS the channel
  signs with. botbuilder fetches them with blocking ``requests`` calls from inside the event loop, so these
  servers run in threads, never on the loop that runs the bot.
* An Entra-like login authority (HTTPS, self-signed certificate) for MSAL's client-credentials flow:
  ``/{tenant}/v2.0/.well-known/openid-configuration`` and ``/{tenant}/oauth2/v2.0/token``.
* MSAL's instance discovery, which MSAL always sends to ``https://login.microsoftonline.com/common/discovery/
  instance`` for an authority host it does not know. A CONNECT proxy (point HTTPS_PROXY at it) tunnels that
  host, and only that host, to the local HTTPS server, whose certificate also names it; any other CONNECT
  is refused. Trust the certificate with REQUESTS_CA_BUNDLE=<ca_file>.

Every request is recorded in ``IdentityServers.requests`` so tests can say what the libraries asked for.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import selectors
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

MICROSOFT_LOGIN_HOST = "login.microsoftonline.com"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url_uint(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def jwk(key: rsa.RSAPrivateKey, kid: str, endorsements: list[str]) -> dict:
    """A JWKS entry shaped like login.botframework.com's, endorsements included."""
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "kid": kid, "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e),
            "endorsements": endorsements}


def sign(claims: dict, key: rsa.RSAPrivateKey | None, kid: str | None = "test-key", alg: str = "RS256") -> str:
    headers = {"kid": kid} if kid is not None else {}
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none", headers=headers)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return jwt.encode(claims, pem, algorithm=alg, headers=headers)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, localhost and login.microsoftonline.com; it is its own CA."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local identity test server")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(MICROSOFT_LOGIN_HOST), x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "identity-cert.pem", directory / "identity-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Seen:
    """One request a local identity server answered (or, for the proxy, one CONNECT)."""

    scheme: str
    method: str
    host: str
    path: str
    query: dict
    form: dict


class _Handler(BaseHTTPRequestHandler):
    server_version = "local-identity"

    def log_message(self, format, *args):
        pass

    def _answer(self, method: str) -> None:
        owner: IdentityServers = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        form = {k: v[0] for k, v in parse_qs(body).items()} if body else {}
        seen = Seen(self.server.scheme, method, self.headers.get("Host", ""), parts.path,  # type: ignore[attr-defined]
                    {k: v[0] for k, v in parse_qs(parts.query).items()}, form)
        owner.requests.append(seen)
        status, payload = owner.route(seen)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, context: ssl.SSLContext):
        super().__init__(address, handler)
        self.context = context

    def get_request(self):
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()  # in the handler's thread, so a stuck client cannot block accept()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


class _ConnectProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _ConnectHandler(socketserver.BaseRequestHandler):
    def handle(self):
        owner: IdentityServers = self.server.owner  # type: ignore[attr-defined]
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""][:2]
        owner.requests.append(Seen("proxy", method, target, "", {}, {}))
        if method != "CONNECT" or target != f"{MICROSOFT_LOGIN_HOST}:443":
            self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(("127.0.0.1", owner.tls_port)) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            sel = selectors.DefaultSelector()
            sel.register(self.request, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, self.request)
            while True:
                for key, _ in sel.select(timeout=10):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)


class IdentityServers:
    """The channel's OpenID metadata + JWKS, a login authority with a token endpoint, and a CONNECT proxy."""

    def __init__(self, directory: Path, app_id: str, app_password: str, issuer: str = BOT_FRAMEWORK_ISSUER):
        self.app_id, self.app_password, self.issuer = app_id, app_password, issuer
        self.signing_key = new_rsa_key()  # kid "test-key", endorsed for msteams
        self.webchat_key = new_rsa_key()  # kid "webchat-key", endorsed for webchat only
        self.keys = [jwk(self.signing_key, "test-key", ["msteams", "skype", "slack"]),
                     jwk(self.webchat_key, "webchat-key", ["webchat"])]
        self.requests: list[Seen] = []
        self.issued: list[str] = []
        self._counter = itertools.count(1)
        self.ca_file, key_file = self_signed_certificate(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, key_file)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._tls = _TLSServer(("127.0.0.1", 0), _Handler, context)
        self._proxy = _ConnectProxy(("127.0.0.1", 0), _ConnectHandler)
        for server, scheme in ((self._http, "http"), (self._tls, "https"), (self._proxy, "proxy")):
            server.owner, server.scheme = self, scheme
        self.http_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.tls_port = self._tls.server_address[1]
        self.tls_url = f"https://127.0.0.1:{self.tls_port}"
        self.proxy_url = f"http://127.0.0.1:{self._proxy.server_address[1]}"
        self._threads: list[threading.Thread] = []

    # -- what tests configure -------------------------------------------------------------------
    @property
    def openid_metadata_url(self) -> str:
        return f"{self.http_url}/.well-known/openid-configuration"

    def login_url(self, tenant: str = "botframework.com") -> str:
        return f"{self.tls_url}/{tenant}"

    def channel_token(self, service_url: str | None, *, key: rsa.RSAPrivateKey | None = None,
                      kid: str | None = "test-key", alg: str = "RS256", drop: tuple[str, ...] = (), **claims) -> str:
        """A token as the Bot Framework channel sends it to the bot; claims override, drop removes."""
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": self.app_id, "nbf": now - 60, "exp": now + 3600,
                   "serviceurl": service_url}
        payload.update(claims)
        for name in drop:
            payload.pop(name, None)
        return sign(payload, key or self.signing_key, kid, alg)

    def token_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/oauth2/v2.0/token")]

    # -- serving --------------------------------------------------------------------------------
    def route(self, seen: Seen) -> tuple[int, dict]:
        path = seen.path
        if seen.scheme == "http":
            if path == "/.well-known/openid-configuration":
                return 200, {"issuer": self.issuer, "authorization_endpoint": f"{self.http_url}/authorize",
                             "jwks_uri": f"{self.http_url}/keys", "id_token_signing_alg_values_supported": ["RS256"],
                             "token_endpoint_auth_methods_supported": ["private_key_jwt"]}
            if path == "/keys":
                return 200, {"keys": self.keys}
            return 404, {"error": "not_found"}
        if path == "/common/discovery/instance":  # MSAL's instance discovery, reached through the proxy
            # MSAL names the authority by host only (it drops the port), so answer with the local authority's URL.
            authorize = urlsplit(seen.query.get("authorization_endpoint", ""))
            tenant_path = authorize.path.rsplit("/oauth2/", 1)[0]
            host = authorize.hostname or ""
            discovery = f"{self.tls_url}{tenant_path}/v2.0/.well-known/openid-configuration"
            return 200, {"tenant_discovery_endpoint": discovery,
                         "api-version": "1.1",
                         "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]}
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            base = f"{self.tls_url}/{parts[0]}"
            return 200, {"issuer": f"{base}/v2.0", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                         "token_endpoint": f"{base}/oauth2/v2.0/token", "jwks_uri": f"{base}/discovery/v2.0/keys",
                         "response_types_supported": ["code", "id_token", "token"],
                         "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"]}
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"] and seen.method == "POST":
            form = seen.form
            if form.get("grant_type") != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_password:
                return 401, {"error": "invalid_client", "error_description": "local test authority: bad client"}
            token = f"local-access-token-{next(self._counter)}"
            self.issued.append(token)
            return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        return 404, {"error": "not_found", "path": path}

    def start(self) -> IdentityServers:
        for server in (self._http, self._tls, self._proxy):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._http, self._tls, self._proxy):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
