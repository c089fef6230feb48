// ---------------------------------------------------------------- text
// A growing byte buffer, and JSON string escaping.

typedef struct {
    char *ptr;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->ptr, cap);
        if (!p) abort();  // out of memory: the trap ends this instance
        b->ptr = p;
        b->cap = cap;
    }
    memcpy(b->ptr + b->len, s, n);
    b->len += n;
    b->ptr[b->len] = 0;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static void put_u64(buf_t *b, uint64_t v) {
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    puts_(b, num);
}

// `s` (UTF-8) as a JSON string.
static void put_json_string(buf_t *b, const uint8_t *s, size_t n) {
    puts_(b, "\"");
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(b, esc);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    puts_(b, "\"");
}

// What was sent, as JSON: text as a JSON string, JSON as it is (the kernel
// checked that it parses). False for binary.
static bool put_payload(buf_t *b, const agent_payload_t *p) {
    if (p->tag == WEFT_KERNEL_IPC_PAYLOAD_TEXT) {
        put_json_string(b, p->val.text.ptr, p->val.text.len);
    } else if (p->tag == WEFT_KERNEL_IPC_PAYLOAD_JSON) {
        put(b, (const char *)p->val.json.ptr, p->val.json.len);
    } else {
        return false;
    }
    return true;
}

// Hands `b`'s bytes to an owned string (the bindings free it after the call).
static void take(agent_string_t *out, buf_t *b) {
    out->ptr = (uint8_t *)b->ptr;
    out->len = b->len;
    b->ptr = NULL;
    b->len = b->cap = 0;
}

static void log_info(buf_t *line) {
    agent_string_t msg = {(uint8_t *)line->ptr, line->len};
    weft_kernel_kernel_log(WEFT_KERNEL_IPC_LEVEL_INFO, &msg);  // borrowed, not freed
}
