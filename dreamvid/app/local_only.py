"""An ASGI middleware that lets the page answer only the names it was started on.

Why: a page on localhost is reachable from any web page the user visits. With DNS rebinding
(``rebind.evil.example`` first resolving to the attacker, then to 127.0.0.1) the browser treats
the local server as the attacker's own origin and lets its scripts start jobs and fill the disk.
Two checks close that, neither of which a browser lets a script forge:

- ``Host``: a request must name the address the server listens on, or a loopback name
  (localhost, 127.0.0.1, [::1]), with the server's port; else 400. Listening on all interfaces
  (0.0.0.0 / ::) also accepts IP literals and this machine's own host names: rebinding needs a
  DNS name the attacker controls, an IP literal cannot be rebound.
- ``Origin``: a state-changing request (any method but GET / HEAD / OPTIONS) or a WebSocket
  from a browser carries its page's origin; one whose host is not allowed by the rule above (or
  the opaque ``null`` origin) gets 403. Requests without an Origin (curl, the Python client)
  are not sent by a web page and pass.

No Gradio here: plain ASGI, testable on its own.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Awaitable, Callable, Iterable, Optional, Set
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def split_host(value: str) -> Optional[tuple]:
    """('name', port or None) of a Host header value ('[::1]:7860' -> ('::1', 7860)); None when it
    does not parse. Names are lower-cased, a trailing dot dropped."""
    value = value.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    elif value.count(":") == 1:
        name, port_text = value.split(":")
    elif ":" in value:  # a bare IPv6 address is not a valid Host
        return None
    else:
        name, port_text = value, ""
    if port_text and not port_text.isdigit():
        return None
    return name.rstrip("."), int(port_text) if port_text else None


class LocalOnly:
    """ASGI middleware: refuse requests whose Host (or, on state-changing requests, Origin) is not
    the server's own address; see the module's docstring for the rules.

    host, port: what the server was started on. extra_names: more host names to accept."""

    def __init__(self, app, host: str, port: int, extra_names: Iterable[str] = ()):
        self.app, self.port = app, int(port)
        host = host.strip("[]").lower()
        self.wildcard = host in WILDCARD_HOSTS
        self.names: Set[str] = {*LOOPBACK_NAMES, host, *(n.lower() for n in extra_names)}
        if self.wildcard:
            for name in (socket.gethostname(), socket.getfqdn()):
                if name:
                    self.names.add(name.lower().rstrip("."))
        self.names.discard("")

    def allowed(self, host_value: str, default_port: int) -> bool:
        """Whether a Host-header-like 'name[:port]' names this server."""
        parsed = split_host(host_value)
        if parsed is None:
            return False
        name, port = parsed
        if (default_port if port is None else port) != self.port:
            return False
        return name in self.names or (self.wildcard and _is_ip(name))

    def origin_allowed(self, origin: str) -> bool:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file: pages) or junk
        return self.allowed(parts.netloc, 443 if parts.scheme == "https" else 80)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        if not self.allowed(headers.get("host", ""), 80):
            return await _refuse(scope, receive, send, 400, "unknown Host: this page answers only the "
                                 "address it was started on")
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method", "GET").upper() not in SAFE_METHODS
        if changes and origin is not None and not self.origin_allowed(origin):
            return await _refuse(scope, receive, send, 403, "cross-origin request refused")
        return await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})  # policy violation
        return
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
