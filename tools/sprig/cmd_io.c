/*
 * cmd_io.c -- `sprig doc import` and `sprig doc export`: documents in bulk
 * between a collection and NDJSON (one JSON value a line) or a JSON array,
 * from a file or stdin, to a file or stdout.
 *
 * Import streams its input through a small scanner (one value at a time,
 * never the whole file in memory), checks each value with jansson, takes
 * its id from a top-level field (--id-field) or lets the database assign
 * one, and applies the documents in transactions of --batch documents (at
 * most BATCH_BYTES of contents each): over --url that is one round trip a
 * batch, not one a document.  Every document before a bad one is
 * imported; the error names the bad one's number and line.  Progress goes
 * to stderr (progress.h).  Export pages through the collection in id
 * order.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"
#include "progress.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A batch is applied when it holds this many bytes of contents. */
#define BATCH_BYTES (4u << 20)

static const char import_usage[] =
    "usage: sprig [--path DIR | --url URL] [--db NAME] doc import COLLECTION\n"
    "                 [FILE | -] [--id-field NAME] [--overwrite]\n"
    "                 [--batch N] [--quiet]\n"
    "\n"
    "Insert the documents of FILE (default: stdin) into COLLECTION: NDJSON\n"
    "(one JSON value a line) or one JSON array of values.  Ids come from\n"
    "the top-level field NAME of each document (--id-field: a number for\n"
    "u64-id collections, a string or number for natural ones; the field\n"
    "stays in the document), else the database assigns u64 ids.  Documents\n"
    "are applied in transactions of N (default 1000; at most 4 MB each).\n"
    "--overwrite replaces documents whose id exists, else an existing id\n"
    "stops the import (exit 4).  Every document before a bad one is\n"
    "imported; the error names the bad one (its number and line).\n"
    "A progress bar (documents, MB, rate, time left) goes to stderr on a\n"
    "terminal, progress lines otherwise; --quiet: none.  Prints\n"
    "{\"imported\":N,\"transactions\":T}.\n";

static const char export_usage[] =
    "usage: sprig [--path DIR | --url URL] [--db NAME] doc export COLLECTION\n"
    "                 [FILE | -] [--id-field NAME] [--from ID] [--to ID]\n"
    "                 [--quiet]\n"
    "\n"
    "Write the documents of COLLECTION (ids from --from to --to) to FILE\n"
    "(default: stdout) as NDJSON, in id order: each line a document's\n"
    "contents.  --id-field NAME adds the id to each object as field NAME\n"
    "(unless it has one), so `doc import --id-field NAME` reads it back\n"
    "with the same ids.  Progress goes to stderr (--quiet: none); with a\n"
    "FILE, prints {\"exported\":N} when done.\n";

/* ---- reading values ---------------------------------------------------- */

/* The input, read a buffer at a time. */
typedef struct reader {
    FILE *f;
    unsigned char buf[65536];
    size_t pos, len;
    uint64_t line;       /* the line at `pos`, from 1 */
    uint64_t start_line; /* the line the last value started on */
    uint64_t bytes;      /* consumed so far */
    int mode;            /* 0: not known yet, 'n': values, '[': an array */
    bool need_sep;       /* array: a ',' or ']' must come next */
    bool done;           /* array: its ']' was read */
} reader;

static int
rd_peek(reader *r)
{
    if (r->pos == r->len) {
        r->len = fread(r->buf, 1, sizeof r->buf, r->f);
        r->pos = 0;
        if (r->len == 0) {
            return EOF;
        }
    }
    return r->buf[r->pos];
}

static int
rd_get(reader *r)
{
    int c = rd_peek(r);
    if (c != EOF) {
        r->pos++;
        r->bytes++;
        r->line += c == '\n';
    }
    return c;
}

static bool
is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
skip_ws(reader *r)
{
    while (is_ws(rd_peek(r))) {
        rd_get(r);
    }
    return rd_peek(r);
}

/* Append c to out; false when out of memory. */
static bool
take(sprig_buf *out, int c)
{
    char ch = (char)c;
    return sprig_buf_append(out, &ch, 1) == 0;
}

/* A string's rest, after its opening quote (already in `out`). */
static bool
scan_string(reader *r, sprig_buf *out)
{
    bool esc = false;
    for (int c; (c = rd_get(r)) != EOF;) {
        if (!take(out, c)) {
            return false;
        }
        if (!esc && c == '"') {
            return true;
        }
        esc = !esc && c == '\\';
    }
    return false;
}

/* The rest of an object or array whose opening bracket is in `out`. */
static bool
scan_nested(reader *r, sprig_buf *out)
{
    int depth = 1;
    for (int c; depth > 0 && (c = rd_get(r)) != EOF;) {
        if (!take(out, c)) {
            return false;
        }
        if (c == '"' && !scan_string(r, out)) {
            return false;
        }
        depth += c == '{' || c == '[' ? 1 : c == '}' || c == ']' ? -1 : 0;
    }
    return depth == 0;
}

/* A number, true, false or null: up to the next delimiter. */
static bool
scan_scalar(reader *r, sprig_buf *out)
{
    for (int c; (c = rd_peek(r)) != EOF && !is_ws(c) && c != ',' && c != ']' &&
                c != '}' && c != '[' && c != '{';) {
        if (!take(out, rd_get(r))) {
            return false;
        }
    }
    return true;
}

/* Skip what separates values: whitespace, and in an array the ',' (or
 * the closing ']').  False with `why` set on a malformed array. */
static bool
next_start(reader *r, const char **why)
{
    int c = skip_ws(r);
    if (r->mode == 0) {
        r->mode = c == '[' ? '[' : 'n';
        if (c == '[') {
            rd_get(r);
            c = skip_ws(r);
            r->done = c == ']' && rd_get(r) == ']';
        }
    }
    if (r->mode == '[' && !r->done && r->need_sep) {
        c = rd_get(r);
        r->done = c == ']';
        if (c != ',' && c != ']') {
            *why = c == EOF ? "the array is not closed with ']'"
                            : "expected ',' or ']' after a value";
            return false;
        }
        r->need_sep = false;
    }
    c = skip_ws(r);
    if (r->done && c != EOF) {
        *why = "text after the array's closing ']'";
        return false;
    }
    return true;
}

/* One value's text into `out` (empty at the end of the input), the line
 * it starts on into r->start_line.  False with `why` set when the input
 * is malformed (an unterminated value, a bad array). */
static bool
scan_value(reader *r, sprig_buf *out, const char **why)
{
    out->len = 0;
    bool ok = next_start(r, why);
    r->start_line = r->line;
    if (!ok) {
        return false;
    }
    int c = rd_peek(r);
    if (r->done || c == EOF) {
        if (r->mode == '[' && !r->done) {
            *why = "the array is not closed with ']'";
            return false;
        }
        return true;
    }
    ok = take(out, rd_get(r));
    if (ok && c == '"') {
        ok = scan_string(r, out);
    } else if (ok && (c == '{' || c == '[')) {
        ok = scan_nested(r, out);
    } else if (ok) {
        ok = scan_scalar(r, out);
    }
    r->need_sep = r->mode == '[';
    if (!ok) {
        *why = "the value is not terminated";
    }
    return ok;
}

/* ---- ids from a field -------------------------------------------------- */

/* Where the JSON value starting at `v` ends (compact text): at the ','
 * or closing bracket that follows it at its own level. */
static const char *
value_end(const char *v, const char *end)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (; v < end; v++) {
        if (in_str) {
            in_str = esc || *v != '"';
            esc = !esc && *v == '\\';
        } else if (*v == '"') {
            in_str = true;
        } else if (*v == '{' || *v == '[') {
            depth++;
        } else if ((*v == '}' || *v == ']') && depth-- == 0) {
            break;
        } else if (*v == ',' && depth == 0) {
            break;
        }
    }
    return v;
}

/* The end of the string whose opening quote is at `s`: its closing quote,
 * or `end`. */
static const char *
string_end(const char *s, const char *end)
{
    bool esc = false;
    for (s++; s < end && (esc || *s != '"'); s++) {
        esc = !esc && *s == '\\';
    }
    return s;
}

/* The text of top-level field `name` of the compact object `doc`, or
 * {NULL, 0}.  Keys are compared as written (escapes are not decoded). */
static sprig_bytes
field_text(sprig_bytes doc, const char *name)
{
    const char *p = doc.data, *end = p + doc.len;
    size_t n = strlen(name);
    if (doc.len < 2 || *p != '{') {
        return (sprig_bytes){NULL, 0};
    }
    for (p++; p < end && *p == '"';) {
        const char *k = p + 1, *q = string_end(p, end);
        if (q + 1 >= end || q[1] != ':') {
            break;
        }
        const char *v = q + 2, *ve = value_end(v, end);
        if ((size_t)(q - k) == n && memcmp(k, name, n) == 0) {
            return (sprig_bytes){v, (size_t)(ve - v)};
        }
        p = ve < end && *ve == ',' ? ve + 1 : end;
    }
    return (sprig_bytes){NULL, 0};
}

/* A u64 id from the field's text `t`. */
static bool
u64_id(sprig_bytes t, const char *name, uint8_t u64[8], sprig_bytes *id,
       char *why, size_t why_len)
{
    char num[32];
    uint64_t v;
    bool ok = t.len < sizeof num;
    if (ok) {
        memcpy(num, t.data, t.len);
        num[t.len] = 0;
        ok = cli_parse_uint(num, UINT64_MAX, &v);
    }
    if (!ok) {
        snprintf(why, why_len,
                 "field \"%s\" (%.*s) is not a u64 id (the collection has "
                 "u64 ids)",
                 name, (int)(t.len > 40 ? 40 : t.len), (const char *)t.data);
        return false;
    }
    *id = sprig_id_u64(v, u64);
    return true;
}

/* A natural id from the field's text `t`: a string's bytes, or a number
 * as written. */
static bool
natural_id(sprig_bytes t, const char *name, sprig_buf *idbuf, sprig_bytes *id,
           char *why, size_t why_len)
{
    idbuf->len = 0;
    json_t *j = json_loadb(t.data, t.len, JSON_DECODE_ANY, NULL);
    bool ok = j && json_is_string(j) &&
              sprig_buf_append(idbuf, json_string_value(j),
                               json_string_length(j)) == 0;
    if (!ok && j && json_is_number(j)) {
        ok = sprig_buf_append(idbuf, t.data, t.len) == 0;
    }
    json_decref(j);
    if (!ok || idbuf->len == 0) {
        snprintf(why, why_len, "field \"%s\" is not a string or number id",
                 name);
        return false;
    }
    *id = sprig_buf_bytes(idbuf);
    return true;
}

/* The id of `doc` from field `name`, for a collection of id kind `kind`:
 * into `idbuf` (natural) or `u64` (u64 ids).  False with `why` set. */
static bool
id_of(sprig_bytes doc, const char *name, sprig_id_kind kind, sprig_buf *idbuf,
      uint8_t u64[8], sprig_bytes *id, char *why, size_t why_len)
{
    sprig_bytes t = field_text(doc, name);
    if (!t.data) {
        snprintf(why, why_len, "has no top-level field \"%s\" for its id",
                 name);
        return false;
    }
    return kind == SPRIG_ID_U64 ? u64_id(t, name, u64, id, why, why_len)
                                : natural_id(t, name, idbuf, id, why, why_len);
}

/* ---- import ------------------------------------------------------------ */

typedef struct importer {
    cli_coll cc;
    const char *id_field;
    bool overwrite;
    uint64_t batch_max;
    sprig_txn *txn;
    uint64_t *lines;   /* the input line of each document of the batch */
    uint64_t first;    /* number (from 1) of the batch's first document */
    uint64_t imported; /* documents applied */
    uint64_t txns;
    size_t batch_bytes;
    cli_progress progress;
} importer;

/* Apply the batch; on failure name the document that failed. */
static int
flush(importer *im)
{
    size_t n = sprig_txn_count(im->txn);
    if (n == 0) {
        return CLI_CONTINUE;
    }
    sprig_txn_result *res = NULL;
    int src = sprig_txn_apply(im->cc.db, im->txn, &res);
    long bad = res ? sprig_txn_result_failed(res) : -1;
    sprig_txn_result_free(res);
    sprig_txn_free(im->txn);
    im->txn = NULL;
    if (src) {
        cli_progress_clear(&im->progress);
        const char *why = src == SPRIG_ECONFLICT
                              ? "its id exists (--overwrite replaces it)"
                              : sprig_errmsg();
        if (bad < 0) {
            return cli_err(src, "documents %llu-%llu: %s; %llu imported before",
                           (unsigned long long)im->first,
                           (unsigned long long)(im->first + n - 1), why,
                           (unsigned long long)im->imported);
        }
        return cli_err(src,
                       "document %llu (line %llu): %s; %llu imported "
                       "before it",
                       (unsigned long long)(im->first + (uint64_t)bad),
                       (unsigned long long)im->lines[bad], why,
                       (unsigned long long)im->imported);
    }
    im->imported += n;
    im->txns++;
    im->first += n;
    im->batch_bytes = 0;
    cli_progress_add(&im->progress, n, 0);
    return CLI_CONTINUE;
}

/* Add one document (compact JSON) read at `line` to the batch. */
static int
add_doc(importer *im, sprig_bytes doc, uint64_t line, sprig_buf *idbuf)
{
    char why[256];
    uint8_t u64[8];
    sprig_bytes id = {0};
    uint64_t number = im->first + (im->txn ? sprig_txn_count(im->txn) : 0);
    if (im->id_field && !id_of(doc, im->id_field, im->cc.kind, idbuf, u64, &id,
                               why, sizeof why)) {
        int rc = flush(im);
        cli_progress_clear(&im->progress);
        return rc != CLI_CONTINUE
                   ? rc
                   : cli_err(SPRIG_EINVAL,
                             "document %llu (line %llu) %s; %llu imported "
                             "before it",
                             (unsigned long long)number,
                             (unsigned long long)line, why,
                             (unsigned long long)im->imported);
    }
    if (!im->txn && sprig_txn_new(&im->txn) != 0) {
        return cli_fail(SPRIG_ENOMEM);
    }
    im->lines[sprig_txn_count(im->txn)] = line;
    int src = im->overwrite ? sprig_txn_overwrite(im->txn, im->cc.name, id, doc)
                            : sprig_txn_insert(im->txn, im->cc.name,
                                               im->id_field ? &id : NULL, doc);
    if (src) {
        return cli_fail(src);
    }
    im->batch_bytes += doc.len;
    if (sprig_txn_count(im->txn) >= im->batch_max ||
        im->batch_bytes >= BATCH_BYTES) {
        return flush(im);
    }
    return CLI_CONTINUE;
}

/* Read, check and add every value of the input. */
static int
import_all(importer *im, reader *r)
{
    sprig_buf text = {0}, idbuf = {0};
    jw compact = {0};
    int rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE) {
        const char *why = NULL;
        char jwhy[200];
        uint64_t before = r->bytes;
        bool ok = scan_value(r, &text, &why);
        uint64_t line = r->start_line;
        if (ok && text.len == 0) { /* the end, after trailing space */
            cli_progress_add(&im->progress, 0, r->bytes - before);
            break;
        }
        if (ok && !cli_json_valid(sprig_buf_bytes(&text), jwhy, sizeof jwhy)) {
            ok = false;
            why = jwhy;
        }
        if (!ok) {
            rc = flush(im);
            cli_progress_clear(&im->progress);
            rc = rc != CLI_CONTINUE
                     ? rc
                     : cli_err(SPRIG_EINVAL,
                               "document %llu (line %llu) is not valid JSON: "
                               "%s; %llu imported before it",
                               (unsigned long long)(im->imported + 1),
                               (unsigned long long)line, why,
                               (unsigned long long)im->imported);
            break;
        }
        compact.buf.len = 0;
        jw_json(&compact, sprig_buf_bytes(&text));
        rc = compact.failed
                 ? cli_fail(SPRIG_ENOMEM)
                 : add_doc(im, sprig_buf_bytes(&compact.buf), line, &idbuf);
        cli_progress_add(&im->progress, 0, r->bytes - before);
    }
    rc = rc == CLI_CONTINUE ? flush(im) : rc;
    sprig_buf_clear(&text);
    sprig_buf_clear(&idbuf);
    jw_free(&compact);
    return rc;
}

/* Open FILE (or stdin for NULL and "-"); its size into *size if known. */
static FILE *
open_input(const char *file, uint64_t *size)
{
    struct stat sb;
    FILE *f = !file || strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    *size = f && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)
                ? (uint64_t)sb.st_size
                : 0;
    return f;
}

static int
import_run(importer *im, const char *file)
{
    uint64_t size;
    reader *r = calloc(1, sizeof *r);
    if (!r) {
        return cli_fail(SPRIG_ENOMEM);
    }
    r->f = open_input(file, &size);
    r->line = 1;
    if (!r->f) {
        free(r);
        return cli_err(SPRIG_ENOTFOUND, "cannot open '%s'", file);
    }
    cli_progress_set_total(&im->progress, 0, size);
    int rc = import_all(im, r);
    if (ferror(r->f) && rc == CLI_CONTINUE) {
        rc = cli_err(SPRIG_EIO, "cannot read '%s'", file ? file : "stdin");
    }
    if (r->f != stdin) {
        fclose(r->f);
    }
    free(r);
    return rc;
}

/* The options of doc import, checked against the collection. */
static int
import_options(cli *c, int argc, char **argv, importer *im, bool *quiet,
               cli_args *a)
{
    const char *batch = NULL;
    const cli_opt opts[] = {{"--id-field", &im->id_field, NULL},
                            {"--overwrite", NULL, &im->overwrite},
                            {"--batch", &batch, NULL},
                            {"--quiet", NULL, quiet},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, import_usage, 1, 2, a);
    im->batch_max = 1000;
    if (rc == CLI_CONTINUE && batch &&
        (!cli_parse_uint(batch, 1000000, &im->batch_max) || !im->batch_max)) {
        rc = cli_usage(import_usage,
                       "--batch '%s' is not a number from 1 to 1000000", batch);
    }
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a->pos[0], &im->cc) : rc;
    if (rc == CLI_CONTINUE &&
        (im->overwrite || im->cc.kind == SPRIG_ID_NATURAL) && !im->id_field) {
        rc = cli_usage(import_usage, "%s needs --id-field NAME",
                       im->overwrite ? "--overwrite"
                                     : "a collection with natural ids");
    }
    return rc;
}

int
cli_doc_import(cli *c, int argc, char **argv)
{
    cli_args a;
    importer im = {.first = 1};
    bool quiet = false;
    int rc = import_options(c, argc, argv, &im, &quiet, &a);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    im.lines = calloc(im.batch_max, sizeof *im.lines);
    if (!im.lines) {
        return cli_fail(SPRIG_ENOMEM);
    }
    cli_progress_opts po;
    cli_progress_opts_init(&po);
    po.label = "import";
    po.unit = "docs";
    po.quiet = quiet;
    cli_progress_start(&im.progress, &po);
    rc = import_run(&im, a.n > 1 ? a.pos[1] : NULL);
    sprig_txn_free(im.txn);
    free(im.lines);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    cli_progress_finish(&im.progress);
    jw w = {0};
    jw_raw(&w, "{\"imported\":");
    jw_u64(&w, im.imported);
    jw_raw(&w, ",\"transactions\":");
    jw_u64(&w, im.txns);
    jw_raw(&w, "}");
    return jw_print(&w);
}

/* ---- export ------------------------------------------------------------ */

/* Write one document: its contents, with the id added as field `id_field`
 * to an object that has no such field. */
static void
write_line(FILE *out, const cli_coll *cc, const sprig_doc *d,
           const char *id_field, sprig_buf *line)
{
    sprig_bytes body = sprig_doc_contents(d);
    const char *p = body.data;
    jw w = {.buf = *line};
    w.buf.len = 0;
    if (id_field && body.len >= 2 && p[0] == '{' &&
        !field_text(body, id_field).data) {
        jw_raw(&w, "{");
        jw_key(&w, id_field);
        jw_id(&w, cc->kind, sprig_doc_header(d).id);
        jw_raw(&w, body.len > 2 ? "," : "");
        jw_json(&w, (sprig_bytes){p + 1, body.len - 1});
    } else {
        jw_contents(&w, body);
    }
    jw_raw(&w, "\n");
    fwrite(w.buf.data, 1, w.buf.len, out);
    *line = w.buf;
}

typedef struct exporter {
    cli_coll cc;
    const char *id_field, *from, *to;
    cli_id ids[2];
    sprig_range range;
    uint64_t exported;
    cli_progress progress;
} exporter;

/* One page of up to 1000 documents after the last one written. */
static int
export_page(exporter *ex, FILE *out, sprig_buf *line, size_t *got)
{
    sprig_doc_list *docs;
    int src =
        sprig_list(ex->cc.db, ex->cc.name, &ex->range, SPRIG_ASC, 1000, &docs);
    if (src) {
        cli_progress_clear(&ex->progress);
        return cli_fail(src);
    }
    size_t n = sprig_doc_list_count(docs);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const sprig_doc *d = sprig_doc_list_get(docs, i);
        write_line(out, &ex->cc, d, ex->id_field, line);
        bytes += line->len;
    }
    if (n > 0) { /* the next page starts after the last id */
        sprig_bytes last = sprig_doc_header(sprig_doc_list_get(docs, n - 1)).id;
        sprig_buf b = {0};
        if (sprig_buf_append(&b, last.data, last.len) != 0) {
            sprig_doc_list_free(docs);
            return cli_fail(SPRIG_ENOMEM);
        }
        free((void *)ex->range.start.key.data);
        ex->range.start = (sprig_bound){SPRIG_EXCLUDED, sprig_buf_bytes(&b)};
    }
    sprig_doc_list_free(docs);
    ex->exported += n;
    cli_progress_add(&ex->progress, n, bytes);
    *got = n;
    return CLI_CONTINUE;
}

/* The --from/--to bounds (copied: pages replace the start). */
static int
export_bounds(exporter *ex)
{
    memset(&ex->range, 0, sizeof ex->range);
    if (ex->from) {
        int rc = cli_parse_id(&ex->cc, ex->from, &ex->ids[0]);
        sprig_buf b = {0};
        if (rc != CLI_CONTINUE) {
            return rc;
        }
        if (sprig_buf_append(&b, ex->ids[0].bytes.data, ex->ids[0].bytes.len) !=
            0) {
            return cli_fail(SPRIG_ENOMEM);
        }
        ex->range.start = (sprig_bound){SPRIG_INCLUDED, sprig_buf_bytes(&b)};
    }
    if (ex->to) {
        int rc = cli_parse_id(&ex->cc, ex->to, &ex->ids[1]);
        if (rc != CLI_CONTINUE) {
            return rc;
        }
        ex->range.end = (sprig_bound){SPRIG_INCLUDED, ex->ids[1].bytes};
    }
    return CLI_CONTINUE;
}

static int
export_run(exporter *ex, const char *file)
{
    bool to_stdout = !file || strcmp(file, "-") == 0;
    FILE *out = to_stdout ? stdout : fopen(file, "wb");
    if (!out) {
        return cli_err(SPRIG_EIO, "cannot create '%s'", file);
    }
    sprig_buf line = {0};
    size_t got = 1;
    int rc = CLI_CONTINUE;
    while (rc == CLI_CONTINUE && got > 0) {
        rc = export_page(ex, out, &line, &got);
    }
    sprig_buf_clear(&line);
    free((void *)ex->range.start.key.data);
    if ((fflush(out) != 0 || ferror(out)) && rc == CLI_CONTINUE) {
        rc = cli_err(SPRIG_EIO, "cannot write '%s'",
                     to_stdout ? "stdout" : file);
    }
    if (!to_stdout && fclose(out) != 0 && rc == CLI_CONTINUE) {
        rc = cli_err(SPRIG_EIO, "cannot write '%s'", file);
    }
    return rc;
}

int
cli_doc_export(cli *c, int argc, char **argv)
{
    cli_args a;
    exporter ex = {0};
    bool quiet = false;
    const cli_opt opts[] = {{"--id-field", &ex.id_field, NULL},
                            {"--from", &ex.from, NULL},
                            {"--to", &ex.to, NULL},
                            {"--quiet", NULL, &quiet},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, export_usage, 1, 2, &a);
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a.pos[0], &ex.cc) : rc;
    rc = rc == CLI_CONTINUE ? export_bounds(&ex) : rc;
    if (rc != CLI_CONTINUE) {
        free((void *)ex.range.start.key.data);
        return rc;
    }
    const char *file = a.n > 1 ? a.pos[1] : NULL;
    cli_progress_opts po;
    cli_progress_opts_init(&po);
    po.label = "export";
    po.unit = "docs";
    /* not over documents written to the same terminal */
    po.quiet = quiet || ((!file || strcmp(file, "-") == 0) &&
                         isatty(STDOUT_FILENO) && isatty(STDERR_FILENO));
    cli_progress_start(&ex.progress, &po);
    rc = export_run(&ex, file);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    cli_progress_finish(&ex.progress);
    if (!file || strcmp(file, "-") == 0) {
        return CLI_OK;
    }
    jw w = {0};
    jw_raw(&w, "{\"exported\":");
    jw_u64(&w, ex.exported);
    jw_raw(&w, "}");
    return jw_print(&w);
}
