"""CURVE security on the bus: key pairs per role, the server side with ZAP, the client side.

`zjobs keys generate DIR` writes a key pair per role, `DIR/ROLE.key` (public)
and `DIR/ROLE.key_secret`, for the roles broker, client, worker and api, and
sorts the public keys by the socket that admits them:

    DIR/allowed/frontend/   client.key, api.key   (submit, inspect, subscribe to events)
    DIR/allowed/backend/    worker.key            (register, receive jobs and payloads)

Each broker socket has its own ZAP domain, and the ZAP handler admits a key on
a socket only if its public key is in that socket's directory: a client key
cannot register as a worker, a worker key cannot submit. Every process loads
its own role's key and never another's; a missing key is a `CurveError`.
Adding a key is copying its `.key` file into the directory of its socket and
restarting the broker.

Secret keys are written with mode 0600 (created under umask 077, so never readable by
others even for an instant, and tightened if the file was there before), public keys
0644, and a directory `generate` creates gets 0700: hand each process its own secret key
and the public keys it needs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from zjobs.broker.wire.errors import ZJobsError

log = structlog.get_logger(__name__)

ROLES = ("broker", "client", "worker", "api")
# The ZAP domain of each broker socket and the roles it admits.
FRONTEND = "frontend"
BACKEND = "backend"
ADMITTED = {FRONTEND: ("client", "api"), BACKEND: ("worker",)}


class CurveError(ZJobsError):
    """A CURVE key directory that lacks what a process needs."""


@dataclass(slots=True, frozen=True)
class CurveConfig:
    """Server side: our secret key file and, per socket (ZAP domain), the allowed keys' dir."""

    secret_key_file: str
    allowed_dirs: dict[str, str]


@dataclass(slots=True, frozen=True)
class ClientCurve:
    """Client side: our secret key file and the broker's public key file."""

    secret_key_file: str
    server_public_key_file: str


SECRET_MODE, PUBLIC_MODE, DIR_MODE = 0o600, 0o644, 0o700


def generate(directory: str | Path) -> list[Path]:
    """Create a key pair per role under `directory` and the per-socket allowed directories.

    Secret keys get mode 0600, public keys 0644; the directories created here 0700.
    """
    out = Path(directory)
    created = []
    with _private_umask():
        out.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        for role in ROLES:
            public, secret = zmq.auth.create_certificates(str(out), role)
            os.chmod(secret, SECRET_MODE)
            os.chmod(public, PUBLIC_MODE)
            created += [Path(public), Path(secret)]
        for domain, roles in ADMITTED.items():
            allowed = out / "allowed" / domain
            allowed.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            for role in roles:
                key = allowed / f"{role}.key"
                key.write_bytes((out / f"{role}.key").read_bytes())
                os.chmod(key, PUBLIC_MODE)
    return created


@contextlib.contextmanager
def _private_umask() -> Iterator[None]:
    """Files and directories created meanwhile are for their owner only (umask 077)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


class AllowedKeys:
    """ZAP credentials for pyzmq's authenticator: the public keys each socket admits.

    Runs in the authenticator's thread; a refusal is logged (`curve.refused`) with the
    socket and the key, so an operator sees who knocked where.
    """

    def __init__(self, allowed_dirs: dict[str, str]) -> None:
        self.keys = {domain: set(zmq.auth.load_certificates(path))
                     for domain, path in allowed_dirs.items()}

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys.get(domain, ()):
            return True
        log.warning("curve.refused", socket=domain, key=key.decode("ascii", "replace"))
        return False


def apply_server_curve(ctx: zmq.Context, sock: zmq.Socket, config: CurveConfig,
                       auth: ThreadAuthenticator | None, domain: str) -> ThreadAuthenticator:
    """Make `sock` a CURVE server in ZAP `domain`; start the authenticator once per context."""
    if auth is None:
        auth = ThreadAuthenticator(ctx)
        auth.start()
        allowed = AllowedKeys(config.allowed_dirs)
        for name in config.allowed_dirs:
            auth.configure_curve_callback(domain=name, credentials_provider=allowed)
    public, secret = zmq.auth.load_certificate(config.secret_key_file)
    sock.zap_domain = domain.encode()
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_server = True
    return auth


def apply_client_curve(sock: zmq.Socket, curve: ClientCurve | Any) -> None:
    """Make `sock` a CURVE client of the broker.

    `curve` is a ClientCurve or a (secret key file, server public key file) pair.
    """
    if not isinstance(curve, ClientCurve):
        curve = ClientCurve(*curve)
    public, secret = zmq.auth.load_certificate(curve.secret_key_file)
    server_public, _ = zmq.auth.load_certificate(curve.server_public_key_file)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server_public


def server_curve(curve_dir: str | None) -> CurveConfig | None:
    """The broker's CURVE settings from a `zjobs keys generate` directory, or None (off)."""
    if not curve_dir:
        return None
    base = Path(curve_dir)
    _need(base / "broker.key_secret", "broker", base)
    allowed = {domain: base / "allowed" / domain for domain in ADMITTED}
    for path in allowed.values():
        if not path.is_dir():
            raise CurveError(f"{path} is missing: the key directory {base} predates the "
                             f"per-socket allowed keys; make a new one with "
                             f"'zjobs keys generate DIR'")
    return CurveConfig(str(base / "broker.key_secret"),
                       {domain: str(path) for domain, path in allowed.items()})


def client_curve(curve_dir: str | None, role: str = "client") -> ClientCurve | None:
    """The CURVE settings of a process in `role` (client, worker, api): its own key pair only."""
    if not curve_dir:
        return None
    base = Path(curve_dir)
    secret = base / f"{role}.key_secret"
    _need(secret, role, base)
    _need(base / "broker.key", "broker's public", base)
    return ClientCurve(str(secret), str(base / "broker.key"))


def _need(path: Path, role: str, base: Path) -> None:
    if not path.exists():
        raise CurveError(f"no {role} key in {base} (expected {path.name}); make the key pairs "
                         f"with 'zjobs keys generate {base}'")
