/*
 * cmd_doc.c -- `sprig doc put|get|list|delete|count`: documents of one
 * collection of the database chosen with --db (F2, F3), as JSON.  Ids are
 * parsed and printed by the collection's id kind (cli_parse_id, jw_id);
 * contents given here must be JSON and are stored without insignificant
 * whitespace (json.c).  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char doc_usage[] =
    "usage: sprig [--path DIR] [--db NAME] doc COMMAND ...\n"
    "\n"
    "  doc put COLLECTION [--id ID] [--overwrite] (JSON | @FILE | FILE | -)\n"
    "  doc update COLLECTION ID (JSON | @FILE | FILE | -) [--revision N]\n"
    "  doc get COLLECTION ID\n"
    "  doc list COLLECTION [--from ID] [--to ID] [--desc] [--limit N]"
    " [--headers]\n"
    "  doc delete COLLECTION ID [--revision N]\n"
    "  doc count COLLECTION\n"
    "  doc import COLLECTION [FILE | -] [--id-field NAME] [--overwrite]\n"
    "             [--batch N] [--quiet]   NDJSON or a JSON array, in bulk\n"
    "  doc export COLLECTION [FILE | -] [--id-field NAME] [--from ID]\n"
    "             [--to ID] [--quiet]     NDJSON\n"
    "\n"
    "Ids are decimal numbers in collections with u64 ids, strings in\n"
    "collections with natural ids.  Each command takes --help.\n";

static const char put_usage[] =
    "usage: sprig [--path DIR] [--db NAME] doc put COLLECTION [--id ID]\n"
    "                 [--overwrite] (JSON | @FILE | FILE | -)\n"
    "\n"
    "Insert a document whose contents are JSON given as an argument, read\n"
    "from FILE (@FILE: always a file; FILE: an argument that is not JSON\n"
    "and names a file), or from stdin with '-' (put -- before JSON\n"
    "starting with '-').  Many documents: doc import.\n"
    "Without --id the database pushes the next u64 id (u64-id collections\n"
    "only).  --overwrite replaces document --id whatever its revision\n"
    "(upsert).  Prints the new header {\"id\":..,\"revision\":..}; exit 4\n"
    "if --id exists (without --overwrite), 2 if the JSON is invalid.\n";

static const char get_usage[] =
    "usage: sprig [--path DIR] [--db NAME] doc get COLLECTION ID\n"
    "\n"
    "Print document ID as {\"id\":..,\"revision\":..,\"contents\":..}.\n"
    "Contents that are JSON are printed as JSON, others as a string.\n"
    "Exit 3 if there is no such document.\n";

static const char list_usage[] =
    "usage: sprig [--path DIR] [--db NAME] doc list COLLECTION [--from ID]\n"
    "                 [--to ID] [--desc] [--limit N] [--headers]\n"
    "\n"
    "Print the documents with ids from --from to --to (both included) as a\n"
    "JSON array, in id order (--desc: reversed), at most N of them (0: no\n"
    "limit).  --headers prints only {\"id\":..,\"revision\":..} of each.\n";

static const char delete_usage[] =
    "usage: sprig [--path DIR] [--db NAME] doc delete COLLECTION ID\n"
    "                 [--revision N]\n"
    "\n"
    "Delete document ID if its revision is N; without --revision, whatever\n"
    "revision is stored.  Prints "
    "{\"id\":..,\"revision\":..,\"deleted\":true};\n"
    "exit 3 if there is no such document, 4 if its revision is not N.\n";

static const char update_usage[] =
    "usage: sprig [--path DIR] [--db NAME] doc update COLLECTION ID\n"
    "                 (JSON | @FILE | FILE | -) [--revision N]\n"
    "\n"
    "Replace the contents of document ID (given as for doc put).  With\n"
    "--revision N only if its stored revision is N, a conditional update:\n"
    "exit 4 if it is not (the message names the stored one); without it,\n"
    "whatever revision is stored.  Prints the new header\n"
    "{\"id\":..,\"revision\":..}; exit 3 if there is no such document.\n";

static const char count_usage[] =
    "usage: sprig [--path DIR] [--db NAME] doc count COLLECTION\n"
    "\n"
    "Print the number of documents in COLLECTION.\n";

/* ---- put --------------------------------------------------------------- */

/* Read all of `f` (named `name` in messages) into `out`, up to
 * SPRIG_CONTENTS_MAX bytes. */
static int
read_all(FILE *f, const char *name, sprig_buf *out)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len + n > SPRIG_CONTENTS_MAX) {
            return cli_err(SPRIG_ETOOBIG, "%s: contents are over %u bytes",
                           name, SPRIG_CONTENTS_MAX);
        }
        if (sprig_buf_append(out, chunk, n) != 0) {
            return cli_fail(SPRIG_ENOMEM);
        }
    }
    if (ferror(f)) {
        return cli_err(SPRIG_EIO, "cannot read the contents from %s", name);
    }
    return CLI_CONTINUE;
}

static int
read_file(const char *file, sprig_buf *out)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        return cli_err(SPRIG_ENOTFOUND, "cannot open '%s': %s", file,
                       strerror(errno));
    }
    int rc = read_all(f, file, out);
    fclose(f);
    return rc;
}

/* Whether `arg` names a regular file. */
static bool
is_file(const char *arg)
{
    struct stat sb;
    return stat(arg, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The raw contents named by `arg`: "-" stdin, "@FILE" a file, JSON, or
 * (when it is not JSON) the file it names. */
static int
read_raw(const char *arg, sprig_buf *raw)
{
    if (strcmp(arg, "-") == 0) {
        return read_all(stdin, "stdin", raw);
    }
    if (arg[0] == '@') {
        return read_file(arg + 1, raw);
    }
    if (!cli_json_valid(sprig_str(arg), NULL, 0) && is_file(arg)) {
        return read_file(arg, raw);
    }
    return sprig_buf_append(raw, arg, strlen(arg)) ? cli_fail(SPRIG_ENOMEM)
                                                   : CLI_CONTINUE;
}

/* The contents named by `arg` (see read_raw), validated and without
 * insignificant whitespace, into `out`. */
static int
read_contents(const char *arg, sprig_buf *out)
{
    sprig_buf raw = {0};
    int rc = read_raw(arg, &raw);
    char why[256];
    if (rc == CLI_CONTINUE &&
        !cli_json_valid(sprig_buf_bytes(&raw), why, sizeof why)) {
        rc = cli_err(SPRIG_EINVAL, "contents are not valid JSON: %s%s", why,
                     arg[0] != '@' && strcmp(arg, "-") != 0
                         ? " (to read a file, give @FILE)"
                         : "");
    }
    jw w = {0};
    if (rc == CLI_CONTINUE) {
        jw_json(&w, sprig_buf_bytes(&raw));
        rc = w.failed ? cli_fail(SPRIG_ENOMEM) : CLI_CONTINUE;
    }
    sprig_buf_clear(&raw);
    *out = w.buf;
    return rc;
}

static int
print_header(sprig_id_kind kind, sprig_header h, const char *extra)
{
    jw w = {0};
    jw_header_open(&w, kind, h);
    jw_raw(&w, extra);
    return jw_print(&w);
}

static int
doc_put(cli *c, int argc, char **argv)
{
    cli_args a;
    cli_coll cc;
    cli_id id;
    const char *id_arg = NULL;
    bool overwrite = false;
    const cli_opt opts[] = {{"--id", &id_arg, NULL},
                            {"--overwrite", NULL, &overwrite},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, put_usage, 2, 2, &a);
    if (rc == CLI_CONTINUE && overwrite && !id_arg) {
        rc = cli_usage(put_usage, "--overwrite needs --id");
    }
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a.pos[0], &cc) : rc;
    if (rc == CLI_CONTINUE && !id_arg && cc.kind == SPRIG_ID_NATURAL) {
        rc = cli_usage(put_usage, "collection '%s' has natural ids: give --id",
                       cc.name);
    }
    rc = rc == CLI_CONTINUE && id_arg ? cli_parse_id(&cc, id_arg, &id) : rc;
    sprig_buf contents = {0};
    rc = rc == CLI_CONTINUE ? read_contents(a.pos[1], &contents) : rc;
    if (rc != CLI_CONTINUE) {
        sprig_buf_clear(&contents);
        return rc;
    }
    sprig_header_buf hb;
    sprig_bytes body = sprig_buf_bytes(&contents);
    int src = overwrite ? sprig_overwrite(cc.db, cc.name, id.bytes, body, &hb)
                        : sprig_insert(cc.db, cc.name,
                                       id_arg ? &id.bytes : NULL, body, &hb);
    sprig_buf_clear(&contents);
    return src ? cli_fail(src)
               : print_header(cc.kind, sprig_header_of(&hb), "}");
}

/* ---- get, count -------------------------------------------------------- */

static void
write_doc(jw *w, sprig_id_kind kind, const sprig_doc *doc)
{
    jw_header_open(w, kind, sprig_doc_header(doc));
    jw_raw(w, ",");
    jw_key(w, "contents");
    jw_contents(w, sprig_doc_contents(doc));
    jw_raw(w, "}");
}

static int
doc_get(cli *c, int argc, char **argv)
{
    cli_args a;
    cli_coll cc;
    cli_id id;
    int rc = cli_parse(argc, argv, NULL, get_usage, 2, 2, &a);
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a.pos[0], &cc) : rc;
    rc = rc == CLI_CONTINUE ? cli_parse_id(&cc, a.pos[1], &id) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_doc *doc;
    int src = sprig_get(cc.db, cc.name, id.bytes, &doc);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    write_doc(&w, cc.kind, doc);
    sprig_doc_free(doc);
    return jw_print(&w);
}

static int
doc_count(cli *c, int argc, char **argv)
{
    cli_args a;
    cli_coll cc;
    int rc = cli_parse(argc, argv, NULL, count_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a.pos[0], &cc) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    uint64_t n;
    int src = sprig_count(cc.db, cc.name, NULL, &n);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_u64(&w, n);
    return jw_print(&w);
}

/* ---- list -------------------------------------------------------------- */

typedef struct list_args {
    const char *from, *to, *limit;
    bool desc, headers;
    cli_id ids[2];
    sprig_range range;
    uint32_t n;
} list_args;

/* Turn the --from/--to/--limit strings into the range and limit. */
static int
list_bounds(const cli_coll *cc, list_args *l)
{
    uint64_t n = 0;
    memset(&l->range, 0, sizeof l->range);
    if (l->limit && !cli_parse_uint(l->limit, UINT32_MAX, &n)) {
        return cli_usage(list_usage, "--limit '%s' is not a number up to %u",
                         l->limit, UINT32_MAX);
    }
    l->n = (uint32_t)n;
    int rc = CLI_CONTINUE;
    if (l->from &&
        (rc = cli_parse_id(cc, l->from, &l->ids[0])) == CLI_CONTINUE) {
        l->range.start = (sprig_bound){SPRIG_INCLUDED, l->ids[0].bytes};
    }
    if (rc == CLI_CONTINUE && l->to &&
        (rc = cli_parse_id(cc, l->to, &l->ids[1])) == CLI_CONTINUE) {
        l->range.end = (sprig_bound){SPRIG_INCLUDED, l->ids[1].bytes};
    }
    return rc;
}

static int
list_docs(const cli_coll *cc, const list_args *l, jw *w)
{
    sprig_doc_list *docs;
    int src = sprig_list(cc->db, cc->name, &l->range,
                         l->desc ? SPRIG_DESC : SPRIG_ASC, l->n, &docs);
    if (src) {
        return cli_fail(src);
    }
    for (size_t i = 0; i < sprig_doc_list_count(docs); i++) {
        jw_raw(w, i ? "," : "");
        write_doc(w, cc->kind, sprig_doc_list_get(docs, i));
    }
    sprig_doc_list_free(docs);
    return CLI_CONTINUE;
}

static int
list_headers(const cli_coll *cc, const list_args *l, jw *w)
{
    sprig_header_list *hl;
    int src = sprig_list_headers(cc->db, cc->name, &l->range,
                                 l->desc ? SPRIG_DESC : SPRIG_ASC, l->n, &hl);
    if (src) {
        return cli_fail(src);
    }
    for (size_t i = 0; i < sprig_header_list_count(hl); i++) {
        jw_raw(w, i ? "," : "");
        jw_header_open(w, cc->kind, sprig_header_list_get(hl, i));
        jw_raw(w, "}");
    }
    sprig_header_list_free(hl);
    return CLI_CONTINUE;
}

static int
doc_list(cli *c, int argc, char **argv)
{
    cli_args a;
    cli_coll cc;
    list_args l = {0};
    const cli_opt opts[] = {
        {"--from", &l.from, NULL},       {"--to", &l.to, NULL},
        {"--limit", &l.limit, NULL},     {"--desc", NULL, &l.desc},
        {"--headers", NULL, &l.headers}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, list_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a.pos[0], &cc) : rc;
    rc = rc == CLI_CONTINUE ? list_bounds(&cc, &l) : rc;
    jw w = {0};
    jw_raw(&w, "[");
    if (rc == CLI_CONTINUE) {
        rc = l.headers ? list_headers(&cc, &l, &w) : list_docs(&cc, &l, &w);
    }
    jw_raw(&w, "]");
    if (rc != CLI_CONTINUE) {
        jw_free(&w);
        return rc;
    }
    return jw_print(&w);
}

/* ---- delete ------------------------------------------------------------ */

/* Delete the stored revision of `id`, whatever it is. */
static int
delete_current(const cli_coll *cc, const cli_id *id, const char *id_arg)
{
    sprig_range r = {{SPRIG_INCLUDED, id->bytes}, {SPRIG_INCLUDED, id->bytes}};
    sprig_header_list *hl;
    int src = sprig_list_headers(cc->db, cc->name, &r, SPRIG_ASC, 1, &hl);
    if (src) {
        return cli_fail(src);
    }
    int rc;
    if (sprig_header_list_count(hl) == 0) {
        rc = cli_err(SPRIG_ENOTFOUND, "no document '%s' in collection '%s'",
                     id_arg, cc->name);
    } else {
        sprig_header h = sprig_header_list_get(hl, 0);
        src = sprig_delete(cc->db, cc->name, &h);
        rc = src ? cli_fail(src)
                 : print_header(cc->kind, h, ",\"deleted\":true}");
    }
    sprig_header_list_free(hl);
    return rc;
}

/* The common head of delete and update: COLLECTION ID [...] with an
 * optional --revision N into h->revision (*given: it was). */
static int
rev_target(cli *c, int argc, char **argv, const char *usage, int npos,
           cli_args *a, cli_coll *cc, cli_id *id, sprig_header *h, bool *given)
{
    const char *rev_arg = NULL;
    const cli_opt opts[] = {{"--revision", &rev_arg, NULL}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, usage, npos, npos, a);
    if (rc == CLI_CONTINUE && rev_arg &&
        !cli_parse_uint(rev_arg, UINT64_MAX, &h->revision)) {
        rc = cli_usage(usage, "--revision '%s' is not a number", rev_arg);
    }
    *given = rev_arg != NULL;
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a->pos[0], cc) : rc;
    return rc == CLI_CONTINUE ? cli_parse_id(cc, a->pos[1], id) : rc;
}

static int
doc_delete(cli *c, int argc, char **argv)
{
    cli_args a;
    cli_coll cc;
    cli_id id;
    sprig_header h = {0};
    bool given;
    int rc =
        rev_target(c, argc, argv, delete_usage, 2, &a, &cc, &id, &h, &given);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (!given) {
        return delete_current(&cc, &id, a.pos[1]);
    }
    h.id = id.bytes; /* an all-zero hash: match the revision alone */
    int src = sprig_delete(cc.db, cc.name, &h);
    return src ? cli_fail(src) : print_header(cc.kind, h, ",\"deleted\":true}");
}

/* ---- update ------------------------------------------------------------ */

/* The stored revision of `id` into h->revision; exit 3 if none. */
static int
stored_revision(const cli_coll *cc, const cli_id *id, const char *id_arg,
                sprig_header *h)
{
    sprig_range r = {{SPRIG_INCLUDED, id->bytes}, {SPRIG_INCLUDED, id->bytes}};
    sprig_header_list *hl;
    int src = sprig_list_headers(cc->db, cc->name, &r, SPRIG_ASC, 1, &hl);
    if (src) {
        return cli_fail(src);
    }
    bool found = sprig_header_list_count(hl) > 0;
    if (found) {
        h->revision = sprig_header_list_get(hl, 0).revision;
    }
    sprig_header_list_free(hl);
    return found
               ? CLI_CONTINUE
               : cli_err(SPRIG_ENOTFOUND, "no document '%s' in collection '%s'",
                         id_arg, cc->name);
}

/* Apply the update; a conflict names the stored revision. */
static int
update_doc(const cli_coll *cc, const sprig_header *h, sprig_bytes body,
           const char *id_arg)
{
    sprig_header_buf hb;
    int src = sprig_update(cc->db, cc->name, h, body, &hb);
    if (src == SPRIG_ECONFLICT) {
        return cli_err(src,
                       "document '%s' is at revision %llu, not %llu: read it "
                       "again (doc get) and retry with --revision %llu",
                       id_arg,
                       (unsigned long long)sprig_header_of(&hb).revision,
                       (unsigned long long)h->revision,
                       (unsigned long long)sprig_header_of(&hb).revision);
    }
    return src ? cli_fail(src)
               : print_header(cc->kind, sprig_header_of(&hb), "}");
}

static int
doc_update(cli *c, int argc, char **argv)
{
    cli_args a;
    cli_coll cc;
    cli_id id;
    sprig_header h = {0};
    bool given;
    int rc =
        rev_target(c, argc, argv, update_usage, 3, &a, &cc, &id, &h, &given);
    sprig_buf contents = {0};
    rc = rc == CLI_CONTINUE ? read_contents(a.pos[2], &contents) : rc;
    if (rc == CLI_CONTINUE && !given) {
        rc = stored_revision(&cc, &id, a.pos[1], &h);
    }
    h.id = id.bytes; /* an all-zero hash: match the revision alone */
    if (rc == CLI_CONTINUE) {
        rc = update_doc(&cc, &h, sprig_buf_bytes(&contents), a.pos[1]);
    }
    sprig_buf_clear(&contents);
    return rc;
}

static const cli_cmd doc_cmds[] = {
    {"put", doc_put},
    {"get", doc_get},
    {"list", doc_list},
    {"delete", doc_delete},
    {"count", doc_count},
    {"update", doc_update},
    {"import", cli_doc_import},
    {"export", cli_doc_export},
    {NULL, NULL},
};

int
cli_cmd_doc(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, doc_cmds, argc - 1, argv + 1, doc_usage);
}
