"""The Host / Origin middleware on its own (plain ASGI, no Gradio): the rules for each address
the page may be started on. The live server is probed with real requests in test_ui.py."""

import asyncio
import socket

import pytest

from dreamvid.app.local_only import LocalOnly, split_host


async def _hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def status(guard, method="GET", host=None, origin=None):
    headers = [] if host is None else [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(guard({"type": "http", "method": method, "path": "/", "headers": headers}, receive, send))
    return sent[0]["status"]


def test_split_host():
    assert split_host("LocalHost.:7860") == ("localhost", 7860)
    assert split_host("[::1]:80") == ("::1", 80)
    assert split_host("example.org") == ("example.org", None)
    assert split_host("::1") is None and split_host("a:b") is None and split_host("") is None


def test_default_loopback_accepts_loopback_names_with_its_port_only():
    guard = LocalOnly(_hello, "127.0.0.1", 7860)
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860"):
        assert status(guard, host=host) == 200
    for host in ("evil.example:7860", "127.0.0.1:7861", "127.0.0.1", "192.0.2.7:7860", "[::1]", None):
        assert status(guard, host=host) == 400


def test_origin_is_checked_on_state_changing_requests_only():
    guard = LocalOnly(_hello, "127.0.0.1", 7860)
    ok = "127.0.0.1:7860"
    assert status(guard, "POST", ok, "http://localhost:7860") == 200
    assert status(guard, "POST", ok, None) == 200  # not sent by a web page
    for origin in ("https://evil.example", "null", "http://127.0.0.1:9999", "file://"):
        assert status(guard, "POST", ok, origin) == 403
        assert status(guard, "DELETE", ok, origin) == 403
    assert status(guard, "GET", ok, "https://evil.example") == 200  # reads: CORS keeps the answer from it


def test_another_address_is_accepted_when_asked():
    guard = LocalOnly(_hello, "192.0.2.7", 8000)
    assert status(guard, host="192.0.2.7:8000") == 200
    assert status(guard, "POST", "192.0.2.7:8000", "http://192.0.2.7:8000") == 200
    assert status(guard, host="192.0.2.8:8000") == 400  # a specific address: only that one
    assert status(guard, host="rebind.evil.example:8000") == 400


def test_all_interfaces_accept_ip_literals_and_this_machines_names_but_no_other_name():
    guard = LocalOnly(_hello, "0.0.0.0", 8000)
    for host in ("192.0.2.7:8000", "[2001:db8::1]:8000", f"{socket.gethostname()}:8000"):
        assert status(guard, host=host) == 200, host
    assert status(guard, host="rebind.evil.example:8000") == 400


def test_websocket_from_a_foreign_origin_is_closed():
    guard = LocalOnly(_hello, "127.0.0.1", 7860)
    sent = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [(b"host", b"127.0.0.1:7860"),
                                                          (b"origin", b"https://evil.example")]}
    asyncio.run(guard(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]
