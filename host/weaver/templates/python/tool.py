"""`{{name}}`: a Weft tool in Python (the `tool` world of `wit/tool.wit`).

A tool is a function from JSON to JSON that agents and people call through the
kernel's gate. This one counts the words and characters of `{"text": "..."}`
and answers `{"words", "chars"}`.

componentize-py generates the `wit_world` package imported here from wit/
(`./build.sh` runs it; `componentize-py -d wit -w tool bindings gen` writes
the same bindings to read).
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports.types import ToolError_InvalidInput, ToolInfo

SCHEMA = '{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}'


class WitWorld(wit_world.WitWorld):
    def describe(self) -> ToolInfo:
        # What `weaver tool ls` shows and agents read to call the tool.
        return ToolInfo(
            name="{{name}}",
            description="Counts the words and characters of a text.",
            params_schema=SCHEMA,
        )

    def invoke(self, input: str) -> str:
        try:
            v = json.loads(input)
        except ValueError as e:
            raise Err(ToolError_InvalidInput(str(e)))
        text = v.get("text") if isinstance(v, dict) else None
        if not isinstance(text, str):
            raise Err(ToolError_InvalidInput('expected {"text": "..."}'))
        return json.dumps({"words": len(text.split()), "chars": len(text)})
