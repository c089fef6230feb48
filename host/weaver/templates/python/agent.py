"""`{{name}}`: a Weft agent in Python (the `agent` world of `wit/agent.wit`).

An agent is a long-lived process that handles one message at a time and keeps
its memory between messages. This one counts what it is sent, logs each
message through the kernel's `log` syscall (it shows in `weaver kernel logs`)
and replies `{"agent", "n", "echo"}`.

componentize-py generates the `wit_world` package imported here from wit/
(`./build.sh` runs it; `componentize-py -d wit -w agent bindings gen` writes
the same bindings to read).
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import kernel
from wit_world.imports.ipc import Level, Payload_Json, Payload_Text

_seen = 0  # messages handled since this instance started


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        kernel.log(Level.INFO, f"{kernel.self_name()} is ready")

    def handle(self, msg):
        global _seen
        p = msg.payload
        if isinstance(p, Payload_Text):
            echo = p.value
        elif isinstance(p, Payload_Json):
            echo = json.loads(p.value)  # the kernel checked that it parses
        else:
            raise Err(f"send text or JSON, not {len(p.value)} bytes")
        _seen += 1
        kernel.log(Level.INFO, f"message {_seen} from {msg.sender_name}: {json.dumps(echo)}")
        reply = {"agent": kernel.self_name(), "n": _seen, "echo": echo}
        return Payload_Json(json.dumps(reply, separators=(",", ":")))
