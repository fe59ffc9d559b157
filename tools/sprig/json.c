/*
 * json.c -- JSON text for the `sprig` tool: validating document contents
 * (with jansson) and writing the one JSON value each command prints.
 *
 * Contents are kept as text, never re-serialized: a valid value is stored
 * and printed with only its insignificant whitespace removed, so numbers
 * keep their exact spelling (9007199254740993, 18446744073709551615, 0.1)
 * where a parse-and-dump round trip would turn 0.1 into
 * 0.10000000000000001 and refuse integers past INT64_MAX.  Output is built
 * compact in a buffer (jw) and indented by print_pretty() when stdout is a
 * terminal.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool
cli_json_valid(sprig_bytes text, char *why, size_t why_len)
{
    json_error_t e;
    size_t flags = JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL;
    json_t *j = text.data ? json_loadb(text.data, text.len, flags, &e) : NULL;
    if (!j) {
        if (why && text.data) {
            snprintf(why, why_len, "%s (line %d, column %d)", e.text, e.line,
                     e.column);
        } else if (why) {
            snprintf(why, why_len, "empty text");
        }
        return false;
    }
    json_decref(j);
    return true;
}

/* ---- writing ----------------------------------------------------------- */

static void
put(jw *w, const void *p, size_t n)
{
    if (!w->failed && n && sprig_buf_append(&w->buf, p, n) != 0) {
        w->failed = true;
    }
}

void
jw_raw(jw *w, const char *s)
{
    put(w, s, strlen(s));
}

void
jw_u64(jw *w, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    jw_raw(w, b);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
    size_t len;
    uint32_t cp, min;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2, cp = p[0] & 0x1Fu, min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3, cp = p[0] & 0x0Fu, min = 0x800;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4, cp = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

static void
put_escape(jw *w, uint8_t ch)
{
    char b[8];
    switch (ch) {
    case '"': jw_raw(w, "\\\""); return;
    case '\\': jw_raw(w, "\\\\"); return;
    case '\n': jw_raw(w, "\\n"); return;
    case '\t': jw_raw(w, "\\t"); return;
    case '\r': jw_raw(w, "\\r"); return;
    default: snprintf(b, sizeof b, "\\u%04x", ch); jw_raw(w, b);
    }
}

void
jw_str(jw *w, sprig_bytes s)
{
    const uint8_t *p = s.data;
    size_t i = 0;
    put(w, "\"", 1);
    while (i < s.len) {
        size_t n = 1;
        if (p[i] == '"' || p[i] == '\\' || p[i] < 0x20) {
            put_escape(w, p[i]);
        } else if (p[i] < 0x80) {
            put(w, p + i, 1);
        } else if ((n = utf8_seq(p + i, s.len - i)) != 0) {
            put(w, p + i, n);
        } else {
            jw_raw(w, "\\ufffd");
            n = 1;
        }
        i += n;
    }
    put(w, "\"", 1);
}

void
jw_cstr(jw *w, const char *s)
{
    jw_str(w, sprig_str(s));
}

void
jw_key(jw *w, const char *name)
{
    jw_cstr(w, name);
    put(w, ":", 1);
}

void
jw_json(jw *w, sprig_bytes text)
{
    const char *p = text.data;
    bool in_str = false, esc = false;
    size_t start = 0;
    for (size_t i = 0; i < text.len; i++) {
        char ch = p[i];
        if (in_str) {
            in_str = esc || ch != '"';
            esc = !esc && ch == '\\';
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            put(w, p + start, i - start);
            start = i + 1;
        }
    }
    put(w, p + start, text.len - start);
}

void
jw_contents(jw *w, sprig_bytes contents)
{
    if (cli_json_valid(contents, NULL, 0)) {
        jw_json(w, contents);
    } else {
        jw_str(w, contents);
    }
}

void
jw_id(jw *w, sprig_id_kind kind, sprig_bytes id)
{
    uint64_t n;
    if (kind == SPRIG_ID_U64 && sprig_key_decode_u64(id, &n) == 0) {
        jw_u64(w, n);
    } else {
        jw_str(w, id);
    }
}

void
jw_header_open(jw *w, sprig_id_kind kind, sprig_header h)
{
    jw_raw(w, "{");
    jw_key(w, "id");
    jw_id(w, kind, h.id);
    jw_raw(w, ",");
    jw_key(w, "revision");
    jw_u64(w, h.revision);
}

/* ---- printing ---------------------------------------------------------- */

static void
newline(FILE *f, int depth)
{
    fprintf(f, "\n%*s", depth * 2, "");
}

/* Print compact JSON text `s` indented by two spaces a level. */
static void
print_pretty(FILE *f, const char *s, size_t n)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            in_str = esc || ch != '"';
            esc = !esc && ch == '\\';
            fputc(ch, f);
            continue;
        }
        switch (ch) {
        case '"':
            in_str = true;
            fputc(ch, f);
            break;
        case '{':
        case '[':
            fputc(ch, f);
            if (i + 1 < n && (s[i + 1] == '}' || s[i + 1] == ']')) {
                fputc(s[++i], f);
            } else {
                newline(f, ++depth);
            }
            break;
        case '}':
        case ']':
            newline(f, --depth);
            fputc(ch, f);
            break;
        case ',':
            fputc(ch, f);
            newline(f, depth);
            break;
        case ':': fputs(": ", f); break;
        default: fputc(ch, f);
        }
    }
    fputc('\n', f);
}

int
jw_print(jw *w)
{
    cli_format f;
    int rc = w->failed ? cli_err(SPRIG_ENOMEM, "out of memory writing the "
                                               "output")
                       : cli_output_format(&f);
    if (rc != CLI_CONTINUE) {
        jw_free(w);
        return rc;
    }
    char *text = NULL;
    size_t n = 0;
    sprig_buf out = {0};
    if (f != CLI_FORMAT_JSON) {
        rc = cli_render(sprig_buf_bytes(&w->buf), f, &out) ? CLI_EFAIL : 0;
        text = out.data;
        n = out.len;
    } else {
        FILE *m = open_memstream(&text, &n);
        if (m && isatty(STDOUT_FILENO)) {
            print_pretty(m, w->buf.data, w->buf.len);
        } else if (m) {
            fwrite(w->buf.data, 1, w->buf.len, m);
            fputc('\n', m);
        }
        rc = m && fclose(m) == 0 ? 0 : CLI_EFAIL;
    }
    jw_free(w);
    rc = rc ? cli_err(SPRIG_ENOMEM, "out of memory writing the output")
            : cli_emit(text ? text : "", n);
    if (f != CLI_FORMAT_JSON) {
        sprig_buf_clear(&out);
    } else {
        free(text);
    }
    return rc;
}

void
jw_free(jw *w)
{
    sprig_buf_clear(&w->buf);
    w->failed = false;
}
