// `{{name}}`: a Weft agent in C (the `agent` world of wit/agent.wit). The
// bindings (agent.h, agent.c) come from `wit-bindgen c` (./build.sh).
//
// An agent is a long-lived process that handles one message at a time and
// keeps its memory between messages. This one counts what it is sent, logs
// each message through the kernel's `log` syscall (it shows in
// `weaver kernel logs`) and replies {"agent", "n", "echo"}.
//
// Ownership, as wit-bindgen's C bindings have it: an export owns its
// arguments (free them) and hands over what it returns (allocated with
// malloc; the bindings free it); an import borrows its arguments.

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

static uint64_t seen;  // messages handled since this instance started

{{c_text}}

bool exports_agent_init(agent_json_t *config, agent_string_t *err) {
    (void)err;
    agent_string_t me;
    weft_kernel_kernel_self_name(&me);
    buf_t line = {0};
    put(&line, (const char *)me.ptr, me.len);
    puts_(&line, " is ready");
    log_info(&line);
    free(line.ptr);
    agent_string_free(&me);
    agent_json_free(config);
    return true;
}

bool exports_agent_handle(agent_message_t *msg, agent_option_payload_t *ret, agent_string_t *err) {
    buf_t echo = {0};
    if (!put_payload(&echo, &msg->payload)) {
        agent_message_free(msg);
        agent_string_dup(err, "send text or JSON, not binary");  // handle's `err` arm
        return false;
    }
    seen++;

    buf_t line = {0};
    puts_(&line, "message ");
    put_u64(&line, seen);
    puts_(&line, " from ");
    put(&line, (const char *)msg->sender_name.ptr, msg->sender_name.len);
    puts_(&line, ": ");
    put(&line, echo.ptr, echo.len);
    log_info(&line);
    free(line.ptr);

    agent_string_t me;
    weft_kernel_kernel_self_name(&me);
    buf_t reply = {0};
    puts_(&reply, "{\"agent\":");
    put_json_string(&reply, me.ptr, me.len);
    puts_(&reply, ",\"n\":");
    put_u64(&reply, seen);
    puts_(&reply, ",\"echo\":");
    put(&reply, echo.ptr, echo.len);
    puts_(&reply, "}");
    agent_string_free(&me);
    free(echo.ptr);
    agent_message_free(msg);

    ret->is_some = true;
    ret->val.tag = WEFT_KERNEL_IPC_PAYLOAD_JSON;
    take(&ret->val.val.json, &reply);
    return true;
}
