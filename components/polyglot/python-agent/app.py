"""A `weft:kernel` agent in Python (the `agent` world), built into a component
by componentize-py (see ../build.sh), which generates the `wit_world`
bindings imported here. The kernel's tests drive it in
host/weft-kernel/tests/polyglot_agent.rs.

`init(config)` takes a JSON object; its `greeting` (a string, default
"hello") is kept for the life of the instance. `handle(msg)`:

- text `t`                                  -> text `"{greeting}, {t}"`
- JSON `{"op": "whoami"}`                   -> JSON `{"pid", "name", "lang": "python"}`
- JSON `{"op": "send", "to": N, "body": T}` -> `kernel.send(named(N), text(T))`,
  JSON `{"ok": <message id>}` or `{"err": "<error>"}`
- JSON `{"op": "chain", "kind": K, "body": B}` -> `kernel.chain-append(K, B)`,
  JSON `{"ok": <seq>}` or `{"err": "<error>"}`
- JSON `{"op": "trap"}`                     -> raises, which traps the instance
- anything else                             -> the `err` arm of handle's result

A syscall error is rendered like the Rust probe agent's `{e:?}`, e.g.
`Denied("...")`, so tests can check both the same way.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import kernel
from wit_world.imports.ipc import Payload_Json, Payload_Text, Target_Named

_greeting = "hello"


class BadRequest(Exception):
    """The message makes no sense: reported as handle's `err` arm."""


class Trap(Exception):
    """Raised on purpose by the `trap` op; never caught, so it traps."""


def _dumps(v):
    return json.dumps(v, separators=(",", ":"))


def error_repr(e):
    """`Error_Denied('no')` -> `Denied("no")`, like Rust's Debug."""
    name = type(e).__name__.removeprefix("Error_")
    return f"{name}({json.dumps(getattr(e, 'value', ''))})"


def _syscall(f, *args):
    try:
        return {"ok": f(*args)}
    except Err as e:
        return {"err": error_repr(e.value)}


def _string(op, key):
    v = op.get(key)
    if not isinstance(v, str) or not v:
        raise BadRequest(f"op `{op['op']}` needs a non-empty string `{key}`")
    return v


def run_op(op):
    name = op.get("op")
    if name == "whoami":
        return {"pid": kernel.self_pid(), "name": kernel.self_name(), "lang": "python"}
    if name == "send":
        to = _string(op, "to")
        body = op.get("body", "")
        if not isinstance(body, str):
            raise BadRequest("op `send` needs a string `body`")
        return _syscall(kernel.send, Target_Named(to), Payload_Text(body))
    if name == "chain":
        kind = _string(op, "kind")
        return _syscall(kernel.chain_append, kind, _dumps(op.get("body", {})))
    if name == "trap":
        raise Trap("python agent was asked to trap")
    raise BadRequest(f"unknown op {json.dumps(name)}")


def handle(payload):
    if isinstance(payload, Payload_Text):
        return Payload_Text(f"{_greeting}, {payload.value}")
    if isinstance(payload, Payload_Json):
        try:
            op = json.loads(payload.value)
        except ValueError as e:
            raise BadRequest(f"payload is not valid JSON: {e}")
        if not isinstance(op, dict) or "op" not in op:
            raise BadRequest('expected a JSON object with an "op"')
        return Payload_Json(_dumps(run_op(op)))
    raise BadRequest("binary payloads are not understood")


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        global _greeting
        try:
            c = json.loads(config) if config.strip() else {}
        except ValueError as e:
            raise Err(f"bad config: {e}")
        if c is None:
            c = {}
        if not isinstance(c, dict):
            raise Err("config must be a JSON object")
        greeting = c.get("greeting", "hello")
        if not isinstance(greeting, str):
            raise Err("config `greeting` must be a string")
        _greeting = greeting

    def handle(self, msg):
        try:
            return handle(msg.payload)
        except BadRequest as e:
            raise Err(str(e))
