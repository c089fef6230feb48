// `{{name}}`: a Weft tool in C (the `tool` world of wit/tool.wit). The
// bindings (tool.h, tool.c) come from `wit-bindgen c` (./build.sh).
//
// A tool is a function from JSON to JSON that agents and people call through
// the kernel's gate. This one counts the words and characters of
// {"text": "..."} and answers {"words", "chars"}.

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

static const char SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}";

// What `weaver tool ls` shows and agents read to call the tool.
void exports_tool_describe(tool_tool_info_t *ret) {
    tool_string_dup(&ret->name, "{{name}}");
    tool_string_dup(&ret->description, "Counts the words and characters of a text.");
    tool_string_dup(&ret->params_schema, SCHEMA);
}

// ---------------------------------------------------------------- JSON
// The kernel hands a tool only input that parses as JSON, so this scanner
// need not reject bad JSON: it walks one object's members and skips values.

typedef struct {
    const uint8_t *s;
    size_t n, i;
} scan_t;

static void ws(scan_t *p) {
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i]) p->i++;
}

// Skips a string at p->i (at its opening quote).
static void skip_string(scan_t *p) {
    for (p->i++; p->i < p->n && p->s[p->i] != '"'; p->i++)
        if (p->s[p->i] == '\\') p->i++;
    p->i++;
}

// Skips any value at p->i, up to the `,` or `}` after it (not eaten).
static void skip_value(scan_t *p) {
    int depth = 0;
    while (p->i < p->n) {
        uint8_t c = p->s[p->i];
        if (c == '"') {
            skip_string(p);
            if (depth == 0) return;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return;
            if (--depth == 0) {
                p->i++;
                return;
            }
        } else if (c == ',' && depth == 0) {
            return;
        }
        p->i++;
    }
}

// Counts the words and characters of the string at p->i, escapes decoded.
static void count_string(scan_t *p, uint64_t *words, uint64_t *chars) {
    bool in_word = false;
    for (p->i++; p->i < p->n && p->s[p->i] != '"'; p->i++) {
        uint8_t c = p->s[p->i];
        bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (c == '\\') {
            uint8_t e = p->s[++p->i];
            space = e == 'n' || e == 't' || e == 'r' || e == 'f';
            if (e == 'u') {
                // \uXXXX is one character; a surrogate pair (two escapes) too.
                bool high = p->i + 4 < p->n && (p->s[p->i + 1] | 0x20) == 'd' &&
                            strchr("89abAB", p->s[p->i + 2]);
                p->i += 4;
                if (high && p->i + 2 < p->n && p->s[p->i + 1] == '\\') p->i += 6;
            }
        } else if ((c & 0xC0) == 0x80) {
            continue;  // a UTF-8 continuation byte: same character
        }
        (*chars)++;
        if (space) {
            in_word = false;
        } else if (!in_word) {
            in_word = true;
            (*words)++;
        }
    }
    p->i++;
}

bool exports_tool_invoke(tool_json_t *input, tool_json_t *ret, tool_tool_error_t *err) {
    scan_t p = {input->ptr, input->len, 0};
    uint64_t words = 0, chars = 0;
    bool found = false;
    ws(&p);
    if (p.i < p.n && p.s[p.i] == '{') {
        p.i++;
        for (ws(&p); p.i < p.n && p.s[p.i] == '"'; ws(&p)) {
            size_t key = p.i;
            skip_string(&p);
            bool is_text = p.i - key == 6 && memcmp(p.s + key, "\"text\"", 6) == 0;
            ws(&p);
            p.i++;  // the ':'
            ws(&p);
            if (is_text && p.i < p.n && p.s[p.i] == '"') {
                words = chars = 0;  // the last duplicate wins, as in most parsers
                count_string(&p, &words, &chars);
                found = true;
            } else {
                found = found && !is_text;
                skip_value(&p);
            }
            ws(&p);
            if (p.i < p.n && p.s[p.i] == ',') p.i++;
            ws(&p);
        }
    }
    tool_string_free(input);
    if (!found) {
        err->tag = WEFT_KERNEL_TYPES_TOOL_ERROR_INVALID_INPUT;
        tool_string_dup(&err->val.invalid_input, "expected {\"text\": \"...\"}");
        return false;
    }
    char out[64];
    snprintf(out, sizeof out, "{\"words\":%llu,\"chars\":%llu}", (unsigned long long)words,
             (unsigned long long)chars);
    tool_string_dup(ret, out);
    return true;
}
