"""CURVE security on the bus: key files, the server side with ZAP, the client side.

`zjobs keys generate DIR` writes `DIR/broker.key(_secret)` and
`DIR/client.key(_secret)`; the broker takes its secret key file and a
directory of allowed public keys (ZAP via pyzmq's authenticator thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


@dataclass(slots=True, frozen=True)
class CurveConfig:
    """Server side: our secret key file and the directory of public keys allowed in."""

    secret_key_file: str
    allowed_keys_dir: str


@dataclass(slots=True, frozen=True)
class ClientCurve:
    """Client side: our secret key file and the broker's public key file."""

    secret_key_file: str
    server_public_key_file: str


def generate(directory: str | Path, names: tuple[str, ...] = ("broker", "client")) -> list[Path]:
    """Create key pairs (`NAME.key` public, `NAME.key_secret` secret) under `directory`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    created = []
    for name in names:
        public, secret = zmq.auth.create_certificates(str(out), name)
        created += [Path(public), Path(secret)]
    allowed = out / "allowed"
    allowed.mkdir(exist_ok=True)
    for name in names:
        if name != "broker":
            (allowed / f"{name}.key").write_bytes((out / f"{name}.key").read_bytes())
    return created


def apply_server_curve(ctx: zmq.Context, sock: zmq.Socket, config: CurveConfig,
                       auth: ThreadAuthenticator | None) -> ThreadAuthenticator:
    """Make `sock` a CURVE server; start the ZAP authenticator once per context."""
    if auth is None:
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=config.allowed_keys_dir)
    public, secret = zmq.auth.load_certificate(config.secret_key_file)
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
    return CurveConfig(str(base / "broker.key_secret"), str(base / "allowed"))


def client_curve(curve_dir: str | None, name: str = "client") -> ClientCurve | None:
    """A client's CURVE settings: `NAME.key_secret` if present, else `client.key_secret`."""
    if not curve_dir:
        return None
    base = Path(curve_dir)
    secret = base / f"{name}.key_secret"
    if not secret.exists():
        secret = base / "client.key_secret"
    return ClientCurve(str(secret), str(base / "broker.key"))
