// `wordcount` in C: a `weft:kernel` tool, same behaviour as the Rust
// reference in components/tools/wordcount (read its module doc for the
// exact rules). Bindings come from `wit-bindgen c` (see ../build.sh).
//
// JSON is parsed by the small hand-written parser below: it accepts exactly
// RFC 8259 JSON, builds nothing but what `wordcount` needs, bounds its
// nesting depth, and reports every malformed input as `invalid-input`
// instead of crashing.

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

#define MAX_DEPTH 128

static const char DESCRIPTION[] =
    "Count the words, lines and Unicode characters of a text, optionally "
    "repeating the count.";

static const char SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\","
    "\"description\":\"the text to count\"},\"repeat\":{\"type\":\"integer\","
    "\"minimum\":1,\"default\":1,\"description\":\"how many times to repeat the "
    "whole count (burns CPU; results are for one pass)\"}},\"required\":[\"text\"],"
    "\"additionalProperties\":false}";

// ---------------------------------------------------------------- counting

typedef struct {
    uint64_t words, lines, chars;
} counts_t;

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// `text` is valid UTF-8 (the canonical ABI guarantees it for the input, and
// the decoder below only ever writes valid UTF-8), so counting bytes that
// are not continuation bytes counts Unicode scalar values.
static counts_t count(const unsigned char *text, size_t len) {
    counts_t c = {0, 0, 0};
    bool in_word = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = text[i];
        if ((b & 0xC0) != 0x80) c.chars++;
        if (b == '\n') c.lines++;
        if (is_space(b)) {
            in_word = false;
        } else if (!in_word) {
            // A multi-byte character starts a word on its lead byte; its
            // continuation bytes are never whitespace, so they keep it going.
            in_word = true;
            c.words++;
        }
    }
    return c;
}

// ---------------------------------------------------------------- JSON

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    const char *err;  // first syntax error, static text
} parser_t;

typedef struct {
    unsigned char *ptr;
    size_t len, cap;
} buf_t;

static bool buf_push(buf_t *b, unsigned char c) {
    if (b->len == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        unsigned char *p = realloc(b->ptr, cap);
        if (!p) return false;
        b->ptr = p;
        b->cap = cap;
    }
    b->ptr[b->len++] = c;
    return true;
}

static bool buf_push_utf8(buf_t *b, uint32_t cp) {
    if (cp < 0x80) return buf_push(b, (unsigned char)cp);
    if (cp < 0x800)
        return buf_push(b, 0xC0 | (cp >> 6)) && buf_push(b, 0x80 | (cp & 0x3F));
    if (cp < 0x10000)
        return buf_push(b, 0xE0 | (cp >> 12)) && buf_push(b, 0x80 | ((cp >> 6) & 0x3F)) &&
               buf_push(b, 0x80 | (cp & 0x3F));
    return buf_push(b, 0xF0 | (cp >> 18)) && buf_push(b, 0x80 | ((cp >> 12) & 0x3F)) &&
           buf_push(b, 0x80 | ((cp >> 6) & 0x3F)) && buf_push(b, 0x80 | (cp & 0x3F));
}

static bool fail(parser_t *p, const char *msg) {
    if (!p->err) p->err = msg;
    return false;
}

static void skip_ws(parser_t *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool peek(parser_t *p, unsigned char c) { return p->pos < p->len && p->s[p->pos] == c; }

static bool literal(parser_t *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "unexpected character");
    p->pos += n;
    return true;
}

static int hex4(parser_t *p) {
    if (p->len - p->pos < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    p->pos += 4;
    return v;
}

// Parses a string at p->pos (which is at '"'). Decodes it into `out` when
// `out` is not NULL, else only validates it.
static bool parse_string(parser_t *p, buf_t *out) {
    if (!peek(p, '"')) return fail(p, "expected a string");
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) return fail(p, "unterminated string");
        unsigned char c = p->s[p->pos++];
        if (c == '"') return true;
        if (c < 0x20) return fail(p, "control character in string");
        if (c != '\\') {
            if (out && !buf_push(out, c)) return fail(p, "out of memory");
            continue;
        }
        if (p->pos >= p->len) return fail(p, "unterminated string");
        unsigned char e = p->s[p->pos++];
        uint32_t cp;
        switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                int hi = hex4(p);
                if (hi < 0) return fail(p, "bad \\u escape");
                cp = (uint32_t)hi;
                if (hi >= 0xDC00 && hi <= 0xDFFF) return fail(p, "lone surrogate in \\u escape");
                if (hi >= 0xD800 && hi <= 0xDBFF) {
                    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        return fail(p, "lone surrogate in \\u escape");
                    p->pos += 2;
                    int lo = hex4(p);
                    if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "lone surrogate in \\u escape");
                    cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                }
                break;
            }
            default: return fail(p, "bad escape in string");
        }
        if (out && !buf_push_utf8(out, cp)) return fail(p, "out of memory");
    }
}

static bool is_digit(parser_t *p) { return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9'; }

// Parses a number per the JSON grammar; stores its value in *value if not NULL.
static bool parse_number(parser_t *p, double *value) {
    size_t start = p->pos;
    if (peek(p, '-')) p->pos++;
    if (peek(p, '0')) {
        p->pos++;
    } else if (is_digit(p)) {
        while (is_digit(p)) p->pos++;
    } else {
        return fail(p, "bad number");
    }
    if (peek(p, '.')) {
        p->pos++;
        if (!is_digit(p)) return fail(p, "bad number");
        while (is_digit(p)) p->pos++;
    }
    if (peek(p, 'e') || peek(p, 'E')) {
        p->pos++;
        if (peek(p, '+') || peek(p, '-')) p->pos++;
        if (!is_digit(p)) return fail(p, "bad number");
        while (is_digit(p)) p->pos++;
    }
    if (value) {
        size_t n = p->pos - start;
        char *tmp = malloc(n + 1);
        if (!tmp) return fail(p, "out of memory");
        memcpy(tmp, p->s + start, n);
        tmp[n] = 0;
        *value = strtod(tmp, NULL);
        free(tmp);
    }
    return true;
}

static bool skip_value(parser_t *p, int depth);

static bool skip_container(parser_t *p, int depth, unsigned char close) {
    if (depth > MAX_DEPTH) return fail(p, "nested too deeply");
    p->pos++;  // the opening bracket
    skip_ws(p);
    if (peek(p, close)) {
        p->pos++;
        return true;
    }
    for (;;) {
        if (close == '}') {
            if (!parse_string(p, NULL)) return false;
            skip_ws(p);
            if (!peek(p, ':')) return fail(p, "expected `:`");
            p->pos++;
        }
        if (!skip_value(p, depth)) return false;
        skip_ws(p);
        if (peek(p, ',')) {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (peek(p, close)) {
            p->pos++;
            return true;
        }
        return fail(p, close == '}' ? "expected `,` or `}`" : "expected `,` or `]`");
    }
}

// Validates one value at p->pos (after whitespace), keeping nothing.
static bool skip_value(parser_t *p, int depth) {
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input");
    switch (p->s[p->pos]) {
        case '{': return skip_container(p, depth + 1, '}');
        case '[': return skip_container(p, depth + 1, ']');
        case '"': return parse_string(p, NULL);
        case 't': return literal(p, "true");
        case 'f': return literal(p, "false");
        case 'n': return literal(p, "null");
        default: return parse_number(p, NULL);
    }
}

// ---------------------------------------------------------------- the tool

typedef enum { ABSENT, WRONG_TYPE, PRESENT } field_state_t;

typedef struct {
    field_state_t text_state;
    buf_t text;
    field_state_t repeat_state;  // PRESENT only when it is a valid repeat
    uint64_t repeat;
    buf_t unknown;  // smallest unknown key so far (code-point order)
    bool has_unknown;
} input_t;

static bool key_is(const buf_t *k, const char *s) {
    size_t n = strlen(s);
    return k->len == n && memcmp(k->ptr, s, n) == 0;
}

// Byte order of UTF-8 is code-point order, as in the other three versions.
static int key_cmp(const buf_t *a, const buf_t *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->ptr, b->ptr, n) : 0;
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

// Parses the whole input into `in`; false (with p->err set) on a syntax
// error. *is_object tells whether the top-level value is an object.
static bool parse_input(parser_t *p, input_t *in, bool *is_object) {
    skip_ws(p);
    *is_object = peek(p, '{');
    if (!*is_object) {
        if (!skip_value(p, 0)) return false;
    } else {
        p->pos++;
        skip_ws(p);
        if (peek(p, '}')) {
            p->pos++;
        } else {
            for (;;) {
                buf_t key = {0};
                if (!parse_string(p, &key)) {
                    free(key.ptr);
                    return false;
                }
                skip_ws(p);
                if (!peek(p, ':')) {
                    free(key.ptr);
                    return fail(p, "expected `:`");
                }
                p->pos++;
                skip_ws(p);
                bool ok;
                // Duplicate keys: the last one wins, as in the other versions.
                if (key_is(&key, "text")) {
                    in->text.len = 0;
                    if (peek(p, '"')) {
                        in->text_state = PRESENT;
                        ok = parse_string(p, &in->text);
                    } else {
                        in->text_state = WRONG_TYPE;
                        ok = skip_value(p, 1);
                    }
                } else if (key_is(&key, "repeat")) {
                    if (p->pos < p->len && (peek(p, '-') || is_digit(p))) {
                        double d = 0;
                        ok = parse_number(p, &d);
                        if (ok && isfinite(d) && d >= 1.0 && floor(d) == d) {
                            in->repeat_state = PRESENT;
                            in->repeat = d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
                        } else {
                            in->repeat_state = WRONG_TYPE;
                        }
                    } else {
                        in->repeat_state = WRONG_TYPE;
                        ok = skip_value(p, 1);
                    }
                } else {
                    if (!in->has_unknown || key_cmp(&key, &in->unknown) < 0) {
                        free(in->unknown.ptr);
                        in->unknown = key;
                        in->has_unknown = true;
                        key.ptr = NULL;
                    }
                    ok = skip_value(p, 1);
                }
                free(key.ptr);
                if (!ok) return false;
                skip_ws(p);
                if (peek(p, ',')) {
                    p->pos++;
                    skip_ws(p);
                    continue;
                }
                if (peek(p, '}')) {
                    p->pos++;
                    break;
                }
                return fail(p, "expected `,` or `}`");
            }
        }
    }
    skip_ws(p);
    if (p->pos != p->len) return fail(p, "trailing characters after the JSON value");
    return true;
}

static void set_error(tool_tool_error_t *err, const char *msg) {
    err->tag = WEFT_KERNEL_TYPES_TOOL_ERROR_INVALID_INPUT;
    tool_string_dup(&err->val.invalid_input, msg);
}

void exports_tool_describe(tool_tool_info_t *ret) {
    tool_string_dup(&ret->name, "wordcount");
    tool_string_dup(&ret->description, DESCRIPTION);
    tool_string_dup(&ret->params_schema, SCHEMA);
}

bool exports_tool_invoke(tool_json_t *input, tool_json_t *ret, tool_tool_error_t *err) {
    parser_t p = {input->ptr, input->len, 0, NULL};
    input_t in = {0};
    in.repeat = 1;
    bool is_object = false;
    bool ok = false;
    char msg[256];

    if (!parse_input(&p, &in, &is_object)) {
        snprintf(msg, sizeof msg, "input is not valid JSON: %s at byte %zu", p.err ? p.err : "syntax error",
                 p.pos);
        set_error(err, msg);
    } else if (!is_object) {
        set_error(err, "input must be a JSON object");
    } else if (in.text_state == ABSENT) {
        set_error(err, "missing required property `text` (a string)");
    } else if (in.text_state == WRONG_TYPE) {
        set_error(err, "property `text` must be a string");
    } else if (in.repeat_state == WRONG_TYPE) {
        set_error(err, "property `repeat` must be an integer >= 1");
    } else if (in.has_unknown) {
        const char *pre = "unknown property `";
        const char *post = "` (allowed: `text`, `repeat`)";
        size_t n = strlen(pre) + in.unknown.len + strlen(post);
        char *m = malloc(n + 1);
        if (!m) abort();
        memcpy(m, pre, strlen(pre));
        if (in.unknown.len) memcpy(m + strlen(pre), in.unknown.ptr, in.unknown.len);
        memcpy(m + strlen(pre) + in.unknown.len, post, strlen(post));
        m[n] = 0;
        // Not tool_string_dup: the key may hold a NUL (from \u0000).
        err->tag = WEFT_KERNEL_TYPES_TOOL_ERROR_INVALID_INPUT;
        err->val.invalid_input.ptr = (uint8_t *)m;
        err->val.invalid_input.len = n;
    } else {
        const unsigned char *text = in.text.ptr ? in.text.ptr : (const unsigned char *)"";
        counts_t c = count(text, in.text.len);
        for (uint64_t i = 1; i < in.repeat; i++) {
            // A volatile pointer: the compiler cannot prove the text is the
            // same each pass, so every pass really rescans it (burns fuel).
            const unsigned char *volatile vp = text;
            c = count(vp, in.text.len);
        }
        snprintf(msg, sizeof msg,
                 "{\"words\":%llu,\"lines\":%llu,\"chars\":%llu,\"lang\":\"c\"}",
                 (unsigned long long)c.words, (unsigned long long)c.lines, (unsigned long long)c.chars);
        tool_string_dup(ret, msg);
        ok = true;
    }
    free(in.text.ptr);
    free(in.unknown.ptr);
    tool_string_free(input);
    return ok;
}
