"""`{{name}}`: a Weft component service in Python (an `agent`-world component).

The kernel runs it as `<app>.service.{{name}}` and routes service calls to it: a
message sent to the service `{{name}}` arrives with `method` set. Methods:
`hello` (the default when none is given) answers `{"hello": <what was sent>,
"calls": n}`, `count` answers `{"calls": n}`.

componentize-py generates the `wit_world` package imported here from wit/.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import kernel
from wit_world.imports.ipc import Level, Payload_Json, Payload_Text

_calls = 0  # calls answered since this instance started


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        # The kernel passes {"service": "{{name}}", "env": {...}} (weftapp.toml `env`).
        kernel.log(Level.INFO, f"service ready, config {config}")

    def handle(self, msg):
        global _calls
        method = msg.method or "hello"
        if method == "hello":
            p = msg.payload
            if isinstance(p, Payload_Text):
                sent = p.value
            elif isinstance(p, Payload_Json):
                sent = json.loads(p.value)
            else:
                raise Err(f"send text or JSON, not {len(p.value)} bytes")
            _calls += 1
            reply = {"hello": sent, "calls": _calls}
        elif method == "count":
            reply = {"calls": _calls}
        else:
            raise Err(f"unknown method `{method}` (this service answers `hello` and `count`)")
        return Payload_Json(json.dumps(reply, separators=(",", ":")))
