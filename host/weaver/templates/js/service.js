// `{{name}}`: a Weft component service in JavaScript (an `agent`-world
// component), built by componentize-js (./build.sh).
//
// The kernel runs it as `<app>.service.{{name}}` and routes service calls to
// it: a message sent to the service `{{name}}` arrives with `method` set.
// Methods: `hello` (the default when none is given) answers
// {"hello": <what was sent>, "calls": n}, `count` answers {"calls": n}.

import { log } from 'weft:kernel/kernel@0.1.0';

let calls = 0; // calls answered since this instance started

export function init(config) {
  // The kernel passes {"service": "{{name}}", "env": {...}} (weftapp.toml `env`).
  log('info', `service ready, config ${config}`);
}

export function handle(msg) {
  const method = msg.method ?? 'hello';
  let reply;
  if (method === 'hello') {
    const p = msg.payload;
    let sent;
    if (p.tag === 'text') sent = p.val;
    else if (p.tag === 'json') sent = JSON.parse(p.val);
    else throw `send text or JSON, not ${p.val.length} bytes`;
    calls += 1;
    reply = { hello: sent, calls };
  } else if (method === 'count') {
    reply = { calls };
  } else {
    throw `unknown method \`${method}\` (this service answers \`hello\` and \`count\`)`;
  }
  return { tag: 'json', val: JSON.stringify(reply) };
}
