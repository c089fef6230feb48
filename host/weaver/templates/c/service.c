// `{{name}}`: a Weft component service in C (an `agent`-world component).
// The bindings (agent.h, agent.c) come from `wit-bindgen c` (./build.sh).
//
// The kernel runs it as `<app>.service.{{name}}` and routes service calls to
// it: a message sent to the service `{{name}}` arrives with `method` set.
// Methods: `hello` (the default when none is given) answers
// {"hello": <what was sent>, "calls": n}, `count` answers {"calls": n}.
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

static uint64_t calls;  // calls answered since this instance started

{{c_text}}

bool exports_agent_init(agent_json_t *config, agent_string_t *err) {
    (void)err;
    // The kernel passes {"service": "{{name}}", "env": {...}} (weftapp.toml `env`).
    buf_t line = {0};
    puts_(&line, "service ready, config ");
    put(&line, (const char *)config->ptr, config->len);
    log_info(&line);
    free(line.ptr);
    agent_json_free(config);
    return true;
}

static bool method_is(const agent_message_t *msg, const char *name) {
    size_t n = strlen(name);
    return msg->method.val.len == n && memcmp(msg->method.val.ptr, name, n) == 0;
}

bool exports_agent_handle(agent_message_t *msg, agent_option_payload_t *ret, agent_string_t *err) {
    buf_t reply = {0};
    bool ok = true;
    if (!msg->method.is_some || method_is(msg, "hello")) {
        puts_(&reply, "{\"hello\":");
        if (put_payload(&reply, &msg->payload)) {
            calls++;
            puts_(&reply, ",\"calls\":");
            put_u64(&reply, calls);
            puts_(&reply, "}");
        } else {
            agent_string_dup(err, "send text or JSON, not binary");
            ok = false;
        }
    } else if (method_is(msg, "count")) {
        puts_(&reply, "{\"calls\":");
        put_u64(&reply, calls);
        puts_(&reply, "}");
    } else {
        buf_t why = {0};
        puts_(&why, "unknown method `");
        put(&why, (const char *)msg->method.val.ptr, msg->method.val.len);
        puts_(&why, "` (this service answers `hello` and `count`)");
        take(err, &why);
        ok = false;
    }
    agent_message_free(msg);
    if (!ok) {
        free(reply.ptr);
        return false;
    }
    ret->is_some = true;
    ret->val.tag = WEFT_KERNEL_IPC_PAYLOAD_JSON;
    take(&ret->val.val.json, &reply);
    return true;
}
