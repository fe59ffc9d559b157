/*
 * format.c -- how the `sprig` tool shows what a command prints: the one
 * JSON value every command builds (json.c) is written as JSON (indented on
 * a terminal), as an aligned table, or as CSV (--format json|table|csv,
 * also the shell's `format` command), and long output on a terminal goes
 * through a pager ($SPRIG_PAGER, else $PAGER, else `less -FRX`; an empty
 * SPRIG_PAGER turns it off).
 *
 * Tables and CSV: an array of objects is one row per element with a column
 * per key (in the order keys first appear); other elements make a single
 * "value" column; an object alone is one row; a scalar is printed as it
 * is.  Strings are shown decoded, other values as compact JSON, so numbers
 * keep their exact spelling.  The walker reads the compact JSON the tool
 * itself wrote (no insignificant whitespace).  Part of tools/sprig/; see
 * cli.h.
 */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_COLS 64
#define TABLE_CELL_MAX 60 /* characters shown of a cell in a table */

static const char *const *format_name; /* the --format option's value */
static int forced = -1;                /* the shell's `format` command */

void
cli_output_init(const char *const *name)
{
    format_name = name;
}

void
cli_output_force(int format)
{
    forced = format;
}

bool
cli_format_parse(const char *s, cli_format *out)
{
    static const char *names[] = {"json", "table", "csv"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (cli_format)i;
            return true;
        }
    }
    return false;
}

int
cli_output_format(cli_format *out)
{
    *out = forced >= 0 ? (cli_format)forced : CLI_FORMAT_JSON;
    if (format_name && *format_name && !cli_format_parse(*format_name, out)) {
        return cli_usage("", "--format '%s' is not json, table or csv",
                         *format_name);
    }
    return CLI_CONTINUE;
}

/* ---- walking compact JSON ---------------------------------------------- */

/* The end of the value that starts at p. */
static const char *
value_end(const char *p, const char *end)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (; p < end; p++) {
        if (in_str) {
            in_str = esc || *p != '"';
            esc = !esc && *p == '\\';
            if (!in_str && depth == 0) {
                return p + 1;
            }
        } else if (*p == '"') {
            in_str = true;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0) {
                return p;
            }
            if (--depth == 0) {
                return p + 1;
            }
        } else if (depth == 0 && (*p == ',' || *p == ':')) {
            return p;
        }
    }
    return end;
}

/* A value's text. */
typedef struct span {
    const char *p;
    size_t n;
} span;

/* Append code point cp as UTF-8. */
static void
put_utf8(sprig_buf *out, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    sprig_buf_append(out, b, n);
}

/* The code point of \uXXXX at p (p at the 'u'), with a following low
 * surrogate; *len gets the characters used after the backslash. */
static unsigned long
unicode_escape(const char *p, const char *end, size_t *len)
{
    char hex[5] = {0};
    *len = 1;
    if (end - p < 5) {
        return 0xFFFD;
    }
    memcpy(hex, p + 1, 4);
    unsigned long cp = strtoul(hex, NULL, 16);
    *len = 5;
    if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 11 && p[5] == '\\' &&
        p[6] == 'u') {
        memcpy(hex, p + 7, 4);
        unsigned long lo = strtoul(hex, NULL, 16);
        if (lo >= 0xDC00 && lo < 0xE000) {
            *len = 11;
            return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
    }
    return cp >= 0xD800 && cp < 0xE000 ? 0xFFFD : cp;
}

/* Append the decoded contents of JSON string `s` (with its quotes). */
static void
decode_string(span s, sprig_buf *out)
{
    const char *p = s.p + 1, *end = s.p + s.n - 1;
    while (p < end) {
        if (*p != '\\' || p + 1 >= end) {
            sprig_buf_append(out, p++, 1);
            continue;
        }
        p++;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = strchr(from, *p);
        if (*p == 'u') {
            size_t len;
            put_utf8(out, unicode_escape(p, end, &len));
            p += len;
        } else {
            sprig_buf_append(out, k ? to + (k - from) : p, 1);
            p++;
        }
    }
}

/* A cell's text: strings decoded, other values as they are. */
static void
cell_text(span v, sprig_buf *out)
{
    out->len = 0;
    if (v.n >= 2 && v.p[0] == '"') {
        decode_string(v, out);
    } else {
        sprig_buf_append(out, v.p, v.n);
    }
}

/* ---- rows and columns -------------------------------------------------- */

typedef struct table {
    span col[MAX_COLS]; /* keys, as JSON strings; col 0 may be "value" */
    size_t ncols;
    bool value_col; /* a column for elements that are not objects */
    span *cells;    /* rows x MAX_COLS; p NULL: empty */
    size_t rows;
} table;

static size_t
column(table *t, span key)
{
    for (size_t i = 0; i < t->ncols; i++) {
        if (t->col[i].n == key.n && memcmp(t->col[i].p, key.p, key.n) == 0) {
            return i;
        }
    }
    if (t->ncols == MAX_COLS) {
        return MAX_COLS - 1;
    }
    t->col[t->ncols] = key;
    return t->ncols++;
}

/* One row from the element `e`: an object's fields, or a single value. */
static void
add_row(table *t, span e)
{
    span *row = t->cells + t->rows++ * MAX_COLS;
    const char *p = e.p, *end = e.p + e.n;
    if (e.n < 2 || *p != '{') {
        static const char value[] = "\"value\"";
        row[column(t, (span){value, sizeof value - 1})] = e;
        return;
    }
    for (p++; p < end && *p == '"';) {
        const char *ke = value_end(p, end);
        if (ke >= end || *ke != ':') {
            break;
        }
        const char *v = ke + 1, *ve = value_end(v, end);
        row[column(t, (span){p, (size_t)(ke - p)})] =
            (span){v, (size_t)(ve - v)};
        p = ve < end && *ve == ',' ? ve + 1 : end;
    }
}

/* The rows of `json`: the elements of an array, or the value alone. */
static int
build_table(sprig_bytes json, table *t)
{
    const char *p = json.data, *end = p + json.len;
    size_t n = 1;
    bool array = json.len > 0 && *p == '[';
    if (array) {
        n = 0;
        for (const char *q = p + 1; q < end && *q != ']';) {
            q = value_end(q, end);
            n++;
            q += q < end && *q == ',';
        }
    }
    memset(t, 0, sizeof *t);
    t->cells = calloc(n ? n : 1, MAX_COLS * sizeof *t->cells);
    if (!t->cells) {
        return SPRIG_ENOMEM;
    }
    if (!array) {
        add_row(t, (span){p, json.len});
        return 0;
    }
    for (const char *q = p + 1; q < end && *q != ']' && t->rows < n;) {
        const char *e = value_end(q, end);
        add_row(t, (span){q, (size_t)(e - q)});
        q = e + (e < end && *e == ',');
    }
    return 0;
}

/* ---- writing tables and CSV -------------------------------------------- */

/* Characters (code points) of UTF-8 text. */
static size_t
chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    }
    return c;
}

/* The first `max` characters of s; *bytes gets their length. */
static size_t
clip(const char *s, size_t n, size_t max, size_t *bytes)
{
    size_t c = 0, i = 0;
    for (; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && c++ == max) {
            break;
        }
    }
    *bytes = i;
    return c > max ? max : c;
}

/* One cell, padded to `width` characters, flattened to one line. */
static void
put_cell(sprig_buf *out, const sprig_buf *text, size_t width, bool last)
{
    size_t bytes, n = clip(text->data, text->len, width, &bytes);
    bool cut = chars(text->data, text->len) > width;
    if (cut && width > 0) {
        n = clip(text->data, text->len, width - 1, &bytes);
    }
    for (size_t i = 0; i < bytes; i++) {
        char ch = ((const char *)text->data)[i];
        ch = ch == '\n' || ch == '\r' || ch == '\t' ? ' ' : ch;
        sprig_buf_append(out, &ch, 1);
    }
    if (cut && width > 0) {
        sprig_buf_append(out, "\xe2\x80\xa6", 3), n++; /* … */
    }
    for (size_t i = n; !last && i < width + 2; i++) {
        sprig_buf_append(out, " ", 1);
    }
}

static void
column_widths(const table *t, size_t *w, sprig_buf *tmp)
{
    for (size_t c = 0; c < t->ncols; c++) {
        cell_text(t->col[c], tmp);
        w[c] = chars(tmp->data, tmp->len);
        for (size_t r = 0; r < t->rows; r++) {
            span v = t->cells[r * MAX_COLS + c];
            cell_text(v.p ? v : (span){"", 0}, tmp);
            size_t n = chars(tmp->data, tmp->len);
            w[c] = n > w[c] ? n : w[c];
        }
        w[c] = w[c] > TABLE_CELL_MAX ? TABLE_CELL_MAX : w[c];
    }
}

static void
write_table(const table *t, sprig_buf *out)
{
    size_t w[MAX_COLS];
    sprig_buf tmp = {0};
    column_widths(t, w, &tmp);
    for (size_t c = 0; c < t->ncols; c++) {
        cell_text(t->col[c], &tmp);
        put_cell(out, &tmp, w[c], c + 1 == t->ncols);
    }
    sprig_buf_append(out, "\n", t->ncols ? 1 : 0);
    for (size_t c = 0; c < t->ncols; c++) {
        for (size_t i = 0; i < w[c]; i++) {
            sprig_buf_append(out, "-", 1);
        }
        sprig_buf_append(out, c + 1 == t->ncols ? "\n" : "  ",
                         c + 1 == t->ncols ? 1 : 2);
    }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            span v = t->cells[r * MAX_COLS + c];
            cell_text(v.p ? v : (span){"", 0}, &tmp);
            put_cell(out, &tmp, w[c], c + 1 == t->ncols);
        }
        sprig_buf_append(out, "\n", 1);
    }
    if (t->rows == 0) {
        sprig_buf_append(out, "(no rows)\n", 10);
    }
    sprig_buf_clear(&tmp);
}

/* A CSV field (RFC 4180): quoted when it holds , " CR LF or edge space. */
static void
put_csv(sprig_buf *out, const sprig_buf *text)
{
    const char *s = text->data;
    size_t n = text->len;
    bool quote = n && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; i < n && !quote; i++) {
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    }
    sprig_buf_append(out, "\"", quote);
    for (size_t i = 0; i < n; i++) {
        sprig_buf_append(out, s[i] == '"' && quote ? "\"\"" : s + i,
                         s[i] == '"' && quote ? 2 : 1);
    }
    sprig_buf_append(out, "\"", quote);
}

static void
write_csv(const table *t, sprig_buf *out)
{
    sprig_buf tmp = {0};
    for (size_t r = 0; r <= t->rows && t->ncols; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            span v = r == 0 ? t->col[c] : t->cells[(r - 1) * MAX_COLS + c];
            cell_text(v.p ? v : (span){"", 0}, &tmp);
            sprig_buf_append(out, ",", c > 0);
            put_csv(out, &tmp);
        }
        sprig_buf_append(out, "\r\n", 2);
    }
    sprig_buf_clear(&tmp);
}

int
cli_render(sprig_bytes json, cli_format f, sprig_buf *out)
{
    const char *p = json.data;
    bool scalar = json.len == 0 || (*p != '[' && *p != '{');
    if (scalar) {
        sprig_buf tmp = {0};
        cell_text((span){p, json.len}, &tmp);
        int rc = sprig_buf_append(out, tmp.data, tmp.len) ||
                 sprig_buf_append(out, "\n", 1);
        sprig_buf_clear(&tmp);
        return rc ? SPRIG_ENOMEM : 0;
    }
    table t;
    if (build_table(json, &t) != 0) {
        return SPRIG_ENOMEM;
    }
    if (f == CLI_FORMAT_TABLE) {
        write_table(&t, out);
    } else {
        write_csv(&t, out);
    }
    free(t.cells);
    return 0;
}

/* ---- the pager --------------------------------------------------------- */

static int
term_rows(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
        return ws.ws_row;
    }
    const char *env = getenv("LINES");
    return env && atoi(env) > 0 ? atoi(env) : 24;
}

/* The pager command, or NULL for none. */
static const char *
pager(void)
{
    const char *p = getenv("SPRIG_PAGER");
    p = p ? p : getenv("PAGER");
    p = p ? p : "less -FRX";
    return *p ? p : NULL;
}

int
cli_emit(const char *text, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) {
        lines += text[i] == '\n';
    }
    const char *cmd = isatty(STDOUT_FILENO) ? pager() : NULL;
    if (cmd && lines >= (size_t)term_rows()) {
        fflush(stdout);
        FILE *p = popen(cmd, "w");
        if (p) {
            void (*old)(int) = signal(SIGPIPE, SIG_IGN);
            fwrite(text, 1, n, p);
            pclose(p);
            signal(SIGPIPE, old);
            return CLI_OK;
        }
    }
    fwrite(text, 1, n, stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        return cli_err(SPRIG_EIO, "cannot write the output");
    }
    return CLI_OK;
}
