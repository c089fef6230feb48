// `{{name}}`: a Weft agent in JavaScript (the `agent` world of wit/agent.wit),
// built into a component by componentize-js (./build.sh).
//
// An agent is a long-lived process that handles one message at a time and
// keeps its memory between messages. This one counts what it is sent, logs
// each message through the kernel's `log` syscall (it shows in
// `weaver kernel logs`) and replies {"agent", "n", "echo"}.

import { log, selfName } from 'weft:kernel/kernel@0.1.0';

let seen = 0; // messages handled since this instance started

export function init(_config) {
  log('info', `${selfName()} is ready`);
}

export function handle(msg) {
  const p = msg.payload;
  let echo;
  if (p.tag === 'text') echo = p.val;
  else if (p.tag === 'json') echo = JSON.parse(p.val); // the kernel checked that it parses
  else throw `send text or JSON, not ${p.val.length} bytes`; // handle's `err` arm
  seen += 1;
  log('info', `message ${seen} from ${msg.senderName}: ${JSON.stringify(echo)}`);
  return { tag: 'json', val: JSON.stringify({ agent: selfName(), n: seen, echo }) };
}
