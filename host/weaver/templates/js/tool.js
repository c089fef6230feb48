// `{{name}}`: a Weft tool in JavaScript (the `tool` world of wit/tool.wit),
// built into a component by componentize-js (./build.sh).
//
// A tool is a function from JSON to JSON that agents and people call through
// the kernel's gate. This one counts the words and characters of
// {"text": "..."} and answers {"words", "chars"}.

const SCHEMA = '{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}';

// What `weaver tool ls` shows and agents read to call the tool.
export function describe() {
  return { name: '{{name}}', description: 'Counts the words and characters of a text.', paramsSchema: SCHEMA };
}

export function invoke(input) {
  let v;
  try {
    v = JSON.parse(input);
  } catch (e) {
    throw { tag: 'invalid-input', val: String(e.message) };
  }
  const text = v !== null && typeof v === 'object' ? v.text : undefined;
  if (typeof text !== 'string') throw { tag: 'invalid-input', val: 'expected {"text": "..."}' };
  const words = text.split(/\s+/).filter((w) => w.length > 0).length;
  const chars = Array.from(text).length; // Unicode scalar values, not UTF-16 units
  return JSON.stringify({ words, chars });
}
