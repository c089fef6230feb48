// `wordcount` in JavaScript: a `weft:kernel` tool, same behaviour as the
// Rust reference in components/tools/wordcount (read its module doc for the
// exact rules). Built into a component by componentize-js (see ../build.sh).

const DESCRIPTION =
  'Count the words, lines and Unicode characters of a text, optionally repeating the count.';

const SCHEMA = JSON.stringify({
  type: 'object',
  properties: {
    text: { type: 'string', description: 'the text to count' },
    repeat: {
      type: 'integer',
      minimum: 1,
      default: 1,
      description: 'how many times to repeat the whole count (burns CPU; results are for one pass)',
    },
  },
  required: ['text'],
  additionalProperties: false,
});

// Exactly ASCII space, \t, \n, \r, \f, \v (not JS's wider \s).
const SPACES = /[ \t\n\r\f\v]+/;

function count(text) {
  let words = 0;
  for (const w of text.split(SPACES)) if (w.length > 0) words++;
  const lines = text.split('\n').length - 1;
  let chars = 0;
  for (const _ of text) chars++; // iterates Unicode scalar values
  return { words, lines, chars };
}

// Code-point order (JS's default sort compares UTF-16 units), to name the
// same unknown key as the other versions.
function codePointLess(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i];
  }
  return x.length < y.length;
}

class InvalidInput extends Error {}

function run(input) {
  let v;
  try {
    v = JSON.parse(input);
  } catch (e) {
    throw new InvalidInput(`input is not valid JSON: ${e.message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new InvalidInput('input must be a JSON object');
  }
  const has = (k) => Object.prototype.hasOwnProperty.call(v, k);
  if (!has('text')) throw new InvalidInput('missing required property `text` (a string)');
  const text = v.text;
  if (typeof text !== 'string') throw new InvalidInput('property `text` must be a string');
  let repeat = 1;
  if (has('repeat')) {
    repeat = v.repeat;
    // A number with an integral value >= 1 (so 3.0 counts, as in JSON Schema).
    if (typeof repeat !== 'number' || !Number.isInteger(repeat) || repeat < 1) {
      throw new InvalidInput('property `repeat` must be an integer >= 1');
    }
  }
  let unknown = null;
  for (const k of Object.keys(v)) {
    if (k !== 'text' && k !== 'repeat' && (unknown === null || codePointLess(k, unknown))) unknown = k;
  }
  if (unknown !== null) {
    throw new InvalidInput(`unknown property \`${unknown}\` (allowed: \`text\`, \`repeat\`)`);
  }
  let c = count(text);
  // Every pass really rescans the text: `repeat` exists to burn fuel.
  for (let i = 1; i < repeat; i++) c = count(text);
  return JSON.stringify({ words: c.words, lines: c.lines, chars: c.chars, lang: 'javascript' });
}

export function describe() {
  return { name: 'wordcount', description: DESCRIPTION, paramsSchema: SCHEMA };
}

export function invoke(input) {
  try {
    return run(input);
  } catch (e) {
    if (e instanceof InvalidInput) throw { tag: 'invalid-input', val: e.message };
    throw { tag: 'failed', val: String(e) };
  }
}
