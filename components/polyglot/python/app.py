"""`wordcount` in Python: a `weft:kernel` tool, same behaviour as the Rust
reference in components/tools/wordcount (read its module doc for the exact
rules). Built into a component by componentize-py (see ../build.sh), which
generates the `wit_world` bindings imported here.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports.types import ToolError_InvalidInput, ToolInfo

DESCRIPTION = (
    "Count the words, lines and Unicode characters of a text, optionally repeating the count."
)

SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "the text to count"},
            "repeat": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "how many times to repeat the whole count "
                "(burns CPU; results are for one pass)",
            },
        },
        "required": ["text"],
        "additionalProperties": False,
    },
    separators=(",", ":"),
)

# Exactly ASCII space, \t, \n, \r, \f, \v (str.split() with no argument
# would also split on Unicode spaces and \x1c-\x1f).
_TO_SPACE = str.maketrans({c: " " for c in "\t\n\r\f\v"})


def count(text):
    words = sum(1 for w in text.translate(_TO_SPACE).split(" ") if w)
    return words, text.count("\n"), len(text)  # len: Unicode scalar values


class InvalidInput(Exception):
    pass


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def run(data):
    try:
        v = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise InvalidInput(f"input is not valid JSON: {e}")
    if not isinstance(v, dict):
        raise InvalidInput("input must be a JSON object")
    if "text" not in v:
        raise InvalidInput("missing required property `text` (a string)")
    text = v["text"]
    if not isinstance(text, str):
        raise InvalidInput("property `text` must be a string")
    repeat = v.get("repeat", 1)
    # A number with an integral value >= 1 (so 3.0 counts, as in JSON Schema);
    # bool is an int subclass in Python, and JSON true is no number.
    if isinstance(repeat, bool) or not isinstance(repeat, (int, float)):
        raise InvalidInput("property `repeat` must be an integer >= 1")
    if isinstance(repeat, float):
        if not repeat.is_integer():
            raise InvalidInput("property `repeat` must be an integer >= 1")
        repeat = int(repeat)
    if repeat < 1:
        raise InvalidInput("property `repeat` must be an integer >= 1")
    unknown = [k for k in v if k not in ("text", "repeat")]
    if unknown:
        raise InvalidInput(f"unknown property `{min(unknown)}` (allowed: `text`, `repeat`)")
    words, lines, chars = count(text)
    # Every pass really rescans the text: `repeat` exists to burn fuel.
    for _ in range(repeat - 1):
        words, lines, chars = count(text)
    return json.dumps(
        {"words": words, "lines": lines, "chars": chars, "lang": "python"},
        separators=(",", ":"),
    )


class WitWorld(wit_world.WitWorld):
    def describe(self) -> ToolInfo:
        return ToolInfo(name="wordcount", description=DESCRIPTION, params_schema=SCHEMA)

    def invoke(self, input: str) -> str:
        try:
            return run(input)
        except InvalidInput as e:
            raise Err(ToolError_InvalidInput(str(e)))
