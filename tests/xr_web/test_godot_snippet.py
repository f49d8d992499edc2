"""The Godot 4 snippet in docs/xr.md (section 3), checked without Godot: no Godot 4 binary can be installed on this
machine (Debian 12 has only godot3; no PyPI package found carries one), so it is never executed here. Instead
gdtoolkit parses it with its Godot 4 grammar, and a small interpreter of the few statements it uses (ws.send of a
Msgpack.encode'd literal, `match` branches, `if`, assignments, calls of the engine's own functions) plays it
against a real hub: the message it sends when the socket opens, then for each message the hub answers the
statements of the branch that matches its type. Every key a branch reads must be in the hub's message, and what
the snippet would hand to its panels (build_panels, update_panels) is checked."""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from gdtoolkit.parser import parser
from lark import Token, Tree

from .hubbed import LIGHT, HubThread

DOC = Path(__file__).resolve().parents[2] / "docs" / "xr.md"
SCENE_ID = "living_room_vr"
MAX_MESSAGES = 200  # bound on the messages one exchange reads
RECV_TIMEOUT_S = 10.0


def snippet() -> str:
    text = DOC.read_text()
    start = text.index("**Godot 4 / GDScript**")
    m = re.search(r"```gdscript\n(.*?)```", text[start:], re.S)
    assert m, "docs/xr.md: no gdscript block after the Godot 4 heading"
    return m.group(1)


class Unsupported(Exception):
    """The snippet uses a construct this checker does not interpret: extend the checker with it."""


class GodotSnippet:
    """The parsed snippet and just enough of GDScript's semantics to run its message handling."""

    def __init__(self, code: str, env: dict[str, Any]) -> None:
        self.tree = parser.parse(code, gather_metadata=True)  # raises on what Godot 4's grammar does not accept
        self.globals: dict[str, Any] = dict(env)
        self.funcs: dict[str, Tree] = {}
        for node in self.tree.children:
            if node.data == "class_var_stmt":
                (decl,) = node.children
                name, *rest = decl.children
                try:
                    self.globals[str(name)] = self.eval(rest[-1], {})
                except Unsupported:  # an engine object (WebSocketPeer.new()): only its calls are interpreted
                    self.globals[str(name)] = None
            elif node.data == "func_def":
                self.funcs[str(node.children[0].children[0])] = node
        self.sent: list[dict[str, Any]] = []  # ws.send(...) payloads, decoded back from the bytes sent
        self.flushed = 0  # how many of `sent` went out on the socket
        self.inbox: list[dict[str, Any]] = []  # what the hub sent, in order
        self.calls: list[tuple[str, list[Any]]] = []  # build_panels(...), update_panels(...), push_error(...)
        self.match = next(self.tree.find_data("match_stmt"))
        self.on_open = next(
            b for b in self.tree.find_data("if_branch") if [str(t) for t in b.children[0].scan_values(bool)] == [
                "not", "authed"]
        )

    # --- running it
    def open(self) -> None:
        """The socket has just opened and nothing was sent yet: the body of `if not authed:`."""
        self.exec_block(self.on_open.children[1:], {})

    def receive(self, m: dict[str, Any]) -> bool:
        """One decoded message through the `match m["type"]`; False when no branch matches it."""
        self.inbox.append(m)
        scope = {"m": m}
        subject = self.eval(self.match.children[0], scope)
        for branch in self.match.children[1:]:
            pattern, *body = branch.children
            if subject in self.patterns(pattern):
                self.exec_block(body, scope)
                return True
        return False

    def call_func(self, name: str, *args: Any) -> None:
        func = self.funcs[name]
        header, *body = func.children
        params = [str(a.children[0]) if isinstance(a, Tree) else str(a) for a in header.children[1].children]
        self.exec_block(body, dict(zip(params, args, strict=True)))

    # --- statements
    def exec_block(self, stmts: list[Any], scope: dict[str, Any]) -> None:
        for st in stmts:
            self.exec(st, scope)

    def exec(self, st: Tree, scope: dict[str, Any]) -> None:
        if st.data == "pass_stmt":
            return
        if st.data == "if_stmt":
            for branch in st.children:
                if branch.data == "else_branch":
                    self.exec_block(branch.children, scope)
                    return
                if self.eval(branch.children[0], scope):
                    self.exec_block(branch.children[1:], scope)
                    return
            return
        if st.data == "expr_stmt":
            (e,) = st.children
            inner = e.children[0] if isinstance(e, Tree) and e.data == "expr" else e
            if isinstance(inner, Tree) and inner.data == "assnmnt_expr":
                target, op, value = inner.children
                v = self.eval(value, scope)
                cur = scope if str(target) in scope else self.globals
                cur[str(target)] = {"=": v, "+=": cur.get(str(target), 0) + v if op == "+=" else v}[str(op)]
                return
            self.eval(inner, scope)
            return
        raise Unsupported(f"statement {st.data} at line {st.meta.line}")

    # --- expressions
    def eval(self, node: Any, scope: dict[str, Any]) -> Any:
        if isinstance(node, Token):
            if node.type == "NUMBER":
                return ast.literal_eval(str(node))
            if node.type == "NAME":
                name = str(node)
                consts = {"true": True, "false": False, "null": None}
                if name in consts:
                    return consts[name]
                if name in scope:
                    return scope[name]
                if name in self.globals:
                    return self.globals[name]
                raise Unsupported(f"unbound name {name!r} at line {node.line}")
            raise Unsupported(f"token {node.type} {node!s}")
        d = node.data
        if d == "expr":
            return self.eval(node.children[0], scope)
        if d == "string":
            return ast.literal_eval(str(node.children[0]))
        if d == "dict":
            return {self.eval(el.children[0], scope): self.eval(el.children[1], scope) for el in node.children}
        if d == "array":
            return [self.eval(c, scope) for c in node.children]
        if d == "subscr_expr":
            container, key = (self.eval(c, scope) for c in node.children)
            assert key in container, f"the snippet reads [{key!r}] (line {node.meta.line}) of {container!r:.300}"
            return container[key]
        if d == "comparison":
            left, op, right = node.children
            a, b = self.eval(left, scope), self.eval(right, scope)
            return {"==": a == b, "!=": a != b}[str(op)]
        if d == "and_test":
            return all(self.eval(c, scope) for c in node.children if not (isinstance(c, Token) and c == "and"))
        if d in ("asless_actual_not_test", "not_test"):
            return not self.eval(node.children[-1], scope)
        if d == "standalone_call":  # the engine's own functions: recorded with their arguments
            name, *args = node.children
            self.calls.append((str(name), [self.eval(a, scope) for a in args]))
            return None
        if d == "getattr_call":
            target, *args = node.children
            path = [str(t) for t in target.scan_values(lambda t: t.type == "NAME")]
            values = [self.eval(a, scope) for a in args]
            if path == ["ws", "send"]:
                (payload,) = values
                assert isinstance(payload, bytes), f"ws.send of {payload!r}: WebSocketPeer sends bytes"
                self.sent.append(msgpack.unpackb(payload))
                return 0
            if path == ["Msgpack", "encode"]:
                (value,) = values
                return {"result": msgpack.packb(value), "error": 0}  # the addon's {result, error} shape
            raise Unsupported(f"call {'.'.join(path)} at line {node.meta.line}")
        if d == "getattr":  # value.attr on a Dictionary (the addon's .result)
            obj = self.eval(node.children[0], scope)
            attr = str(node.children[-1])
            assert isinstance(obj, dict) and attr in obj, f"no .{attr} on {obj!r}"
            return obj[attr]
        raise Unsupported(f"expression {d} at line {node.meta.line}")

    def patterns(self, pattern: Tree) -> list[Any]:
        (p,) = pattern.children
        if isinstance(p, Tree) and p.data == "list_pattern":  # `"a", "b":` matches either
            return [self.eval(c, {}) for c in p.children]
        return [self.eval(p, {})]


async def exchange(url: str, snip: GodotSnippet, phases: list[tuple[Callable[[], None], Callable[[], bool]]]) -> None:
    """Plays the snippet on one real stream connection: for each (action, until) phase, runs action() (what the
    snippet's code would do: open the socket, call a function), sends what it queued, then feeds the hub's
    messages through the snippet's `match` until until() holds (bounded in count and time)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        for action, until in phases:
            action()
            for _ in range(MAX_MESSAGES):
                while snip.flushed < len(snip.sent):
                    await ws.send_bytes(msgpack.packb(snip.sent[snip.flushed]))
                    snip.flushed += 1
                if until():
                    break
                msg = await ws.receive(timeout=RECV_TIMEOUT_S)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                snip.receive(msgpack.unpackb(msg.data))
            assert until(), f"the exchange stopped early; the hub sent {[m.get('type') for m in snip.inbox]}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ht = HubThread(tmp_path_factory.mktemp("godot") / "config")
    token = ht.start()
    yield ht, token
    ht.stop()


def test_snippet_parses_as_godot4_and_sends_auth_first() -> None:
    snip = GodotSnippet(snippet(), {"TOKEN": "a-token"})
    snip.open()
    assert snip.sent == [{"type": "auth", "access_token": "a-token"}]
    assert snip.globals["authed"] is True  # sent once per connection


def test_snippet_against_real_hub_subscribes_builds_scene_and_toggles(hub: Any) -> None:
    ht, token = hub
    snip = GodotSnippet(snippet(), {"TOKEN": token})
    url = ht.url.replace("http", "ws", 1) + "/api/stream"
    before = ht.state(LIGHT).value

    def called(name: str) -> list[Any]:
        return [args[0] for fn, args in snip.calls if fn == name]

    def scene_and_states() -> bool:
        return bool(called("build_panels")) and any(LIGHT in states for states in called("update_panels"))

    def toggled() -> bool:
        return any(m["type"] == "result" and m.get("id") == 3 for m in snip.inbox) and any(
            states.get(LIGHT, {}).get("v") not in (None, before) for states in called("update_panels"))

    asyncio.run(exchange(url, snip, [(snip.open, scene_and_states),
                                     (lambda: snip.call_func("toggle", LIGHT), toggled)]))
    assert snip.inbox[0]["type"] == "auth_ok", snip.inbox[0]
    # what it sent: auth, then on auth_ok a subscription to every state and to the scene, then the command
    assert [m["type"] for m in snip.sent] == ["auth", "subscribe", "xr/subscribe_scene", "call"], snip.sent
    assert snip.sent[3] == {"type": "call", "id": 3, "entity_id": LIGHT, "command": "toggle", "args": {}}
    assert snip.globals["next_id"] == 4
    # what it did with the answers: the resolved scene to build_panels, the light's states to update_panels
    (scene,) = called("build_panels")
    assert scene["id"] == SCENE_ID and scene["panels"], scene
    result = next(m for m in snip.inbox if m["type"] == "result" and m.get("id") == 3)
    assert result["success"] is True, result
    after = ht.state(LIGHT).value
    assert after != before
    assert called("update_panels")[-1][LIGHT]["v"] == after
    unmatched = {m["type"] for m in snip.inbox} - {"auth_ok", "snapshot", "delta", "scene", "result"}
    assert not unmatched, f"hub messages the snippet has no branch for: {unmatched}"


def test_snippet_reports_a_wrong_token(hub: Any) -> None:
    ht, _ = hub
    snip = GodotSnippet(snippet(), {"TOKEN": "not-a-token"})
    url = ht.url.replace("http", "ws", 1) + "/api/stream"
    asyncio.run(exchange(url, snip, [(snip.open, lambda: any(fn == "push_error" for fn, _ in snip.calls))]))
    assert snip.inbox[0]["type"] == "auth_invalid"
    (message,) = (args[0] for fn, args in snip.calls if fn == "push_error")
    assert isinstance(message, str) and message
    assert [m["type"] for m in snip.sent] == ["auth"]  # nothing else after a refused token
