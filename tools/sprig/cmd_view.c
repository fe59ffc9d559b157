/*
 * cmd_view.c -- `sprig view query|reduce`: views (F4) of one collection of
 * the database chosen with --db, as JSON.  Keys on the command line are
 * JSON (a scalar, or an array for a tuple key) encoded the way declarative
 * views encode theirs (sprig_key_from_json); keys in the output are printed
 * back as JSON (sprig_key_to_json).  Views declared in C are usable only by
 * the program that has their code, so the CLI queries declarative views:
 * those of a schema file given with the global --schema, or of a schema
 * registered earlier.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char view_usage[] =
    "usage: sprig [--path DIR] [--db NAME] [--schema FILE] view COMMAND ...\n"
    "\n"
    "  view query COLLECTION VIEW [--key JSON | --range FROM TO |\n"
    "             --prefix JSON] [--desc] [--limit N] [--docs]\n"
    "  view reduce COLLECTION VIEW [--key JSON | --range FROM TO |\n"
    "             --prefix JSON] [--group] [--desc] [--limit N]\n"
    "\n"
    "Keys are JSON: a scalar (\"books\", 3, true) or an array for a tuple\n"
    "key ([\"acme\", \"books\"]).  Each command takes --help.\n";

static const char query_usage[] =
    "usage: sprig [--path DIR] [--db NAME] [--schema FILE] view query\n"
    "                 COLLECTION VIEW [--key JSON | --range FROM TO |\n"
    "                 --prefix JSON] [--desc] [--limit N] [--docs]\n"
    "\n"
    "Print the mappings of VIEW as a JSON array of\n"
    "{\"key\":..,\"value\":..,\"id\":..,\"revision\":..} (with --docs also\n"
    "\"doc\": the source document), ordered by key then source id (--desc:\n"
    "reversed), at most N (0: all).  Without a match option, every mapping;\n"
    "--key: mappings with that key; --range: keys from FROM to TO, both\n"
    "included; --prefix: tuple keys starting with the elements of the JSON\n"
    "array (or scalar) given.  A lazy view is brought up to date first.\n"
    "Exit 1 for a C view (its code is not in the CLI) or an unknown view.\n";

static const char reduce_usage[] =
    "usage: sprig [--path DIR] [--db NAME] [--schema FILE] view reduce\n"
    "                 COLLECTION VIEW [--key JSON | --range FROM TO |\n"
    "                 --prefix JSON] [--group] [--desc] [--limit N]\n"
    "\n"
    "Print the reduced value of the matched mappings as JSON (built-in\n"
    "reduces: count, sum, min, max).  --group prints one\n"
    "{\"key\":..,\"value\":..} per key instead, in key order (--desc:\n"
    "reversed), at most N keys.  Match options as for view query.  Exit 2\n"
    "if the view has no reduce.\n";

typedef struct vargs {
    const char *key, *prefix, *from, *to, *limit;
    bool desc, docs, group;
    sprig_buf kbuf[3];
} vargs;

/* Take "--range FROM TO" out of argv (cli_parse knows one-value options
 * only); returns the new argc, or -1 when --range lacks its values. */
static int
take_range(int argc, char **argv, vargs *v)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc) {
                argv[n++] = argv[i++];
            }
            break;
        }
        if (strcmp(argv[i], "--range") == 0) {
            if (i + 2 >= argc) {
                return -1;
            }
            v->from = argv[++i];
            v->to = argv[++i];
            continue;
        }
        argv[n++] = argv[i];
    }
    return n;
}

/* Encode JSON key `json` into v->kbuf[slot]. */
static int
json_key(vargs *v, int slot, const char *json, const char *what,
         sprig_bytes *out)
{
    int rc = sprig_key_from_json(json, strlen(json), &v->kbuf[slot]);
    if (rc) {
        return cli_err(rc, "%s '%s': %s", what, json, sprig_errmsg());
    }
    *out = sprig_buf_bytes(&v->kbuf[slot]);
    return CLI_CONTINUE;
}

/* The match, order and limit of the query, from the options. */
static int
build_match(vargs *v, const char *usage, sprig_view_query *q)
{
    int given = (v->key != NULL) + (v->prefix != NULL) + (v->from != NULL);
    uint64_t limit = 0;
    if (given > 1) {
        return cli_usage(usage, "give one of --key, --range, --prefix");
    }
    if (v->limit && !cli_parse_uint(v->limit, UINT32_MAX, &limit)) {
        return cli_usage(usage, "--limit '%s' is not a number", v->limit);
    }
    q->limit = (uint32_t)limit;
    q->order = v->desc ? SPRIG_DESC : SPRIG_ASC;
    int rc = CLI_CONTINUE;
    if (v->key) {
        q->match.kind = SPRIG_MATCH_KEY;
        rc = json_key(v, 0, v->key, "--key", &q->match.key);
    } else if (v->prefix) {
        q->match.kind = SPRIG_MATCH_PREFIX;
        rc = json_key(v, 0, v->prefix, "--prefix", &q->match.key);
    } else if (v->from) {
        q->match.kind = SPRIG_MATCH_RANGE;
        q->match.range.start.kind = q->match.range.end.kind = SPRIG_INCLUDED;
        rc = json_key(v, 1, v->from, "--range FROM", &q->match.range.start.key);
        rc = rc == CLI_CONTINUE
                 ? json_key(v, 2, v->to, "--range TO", &q->match.range.end.key)
                 : rc;
    }
    return rc;
}

/* A key as JSON; keys that are not tuple keys (C views) as hex. */
static void
write_key(jw *w, sprig_bytes key)
{
    sprig_buf t = {0};
    if (sprig_key_to_json(key, &t) == 0 && sprig_buf_append(&t, "", 1) == 0) {
        jw_raw(w, t.data);
    } else {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *p = key.data;
        jw_raw(w, "{\"$hex\":\"");
        for (size_t i = 0; i < key.len; i++) {
            char h[3] = {hex[p[i] >> 4], hex[p[i] & 15], 0};
            jw_raw(w, h);
        }
        jw_raw(w, "\"}");
    }
    sprig_buf_clear(&t);
}

static void
write_mapping(jw *w, const cli_coll *cc, const sprig_mapping_list *l, size_t i,
              bool source)
{
    jw_raw(w, i ? ",{" : "{");
    jw_key(w, "key");
    write_key(w, sprig_mapping_list_key(l, i));
    jw_raw(w, ",");
    jw_key(w, "value");
    jw_contents(w, sprig_mapping_list_value(l, i));
    if (source) {
        sprig_header h = sprig_mapping_list_source(l, i);
        jw_raw(w, ",");
        jw_key(w, "id");
        jw_id(w, cc->kind, h.id);
        jw_raw(w, ",");
        jw_key(w, "revision");
        jw_u64(w, h.revision);
    }
    const sprig_doc *d = sprig_mapping_list_doc(l, i);
    if (d) {
        jw_raw(w, ",");
        jw_key(w, "doc");
        jw_contents(w, sprig_doc_contents(d));
    }
    jw_raw(w, "}");
}

static int
print_list(const cli_coll *cc, const sprig_mapping_list *l, bool source)
{
    jw w = {0};
    jw_raw(&w, "[");
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        write_mapping(&w, cc, l, i, source);
    }
    jw_raw(&w, "]");
    return jw_print(&w);
}

/* Parse the command line, open the collection, build the query. */
static int
prepare(cli *c, int argc, char **argv, const char *usage, vargs *v,
        cli_coll *cc, sprig_view_query *q)
{
    cli_args a;
    const cli_opt opts[] = {{"--key", &v->key, NULL},
                            {"--prefix", &v->prefix, NULL},
                            {"--limit", &v->limit, NULL},
                            {"--desc", NULL, &v->desc},
                            {usage == query_usage ? "--docs" : "--group", NULL,
                             usage == query_usage ? &v->docs : &v->group},
                            {NULL, NULL, NULL}};
    argc = take_range(argc, argv, v);
    if (argc < 0) {
        return cli_usage(usage, "--range needs FROM and TO");
    }
    int rc = cli_parse(argc, argv, opts, usage, 2, 2, &a);
    rc = rc == CLI_CONTINUE ? cli_open_coll(c, a.pos[0], cc) : rc;
    if (rc == CLI_CONTINUE) {
        sprig_view_query_init(q, a.pos[0], a.pos[1]);
        rc = build_match(v, usage, q);
    }
    return rc;
}

static void
vargs_free(vargs *v)
{
    for (int i = 0; i < 3; i++) {
        sprig_buf_clear(&v->kbuf[i]);
    }
}

static int
view_query(cli *c, int argc, char **argv)
{
    vargs v = {0};
    cli_coll cc;
    sprig_view_query q;
    sprig_mapping_list *l = NULL;
    int rc = prepare(c, argc, argv, query_usage, &v, &cc, &q);
    if (rc == CLI_CONTINUE) {
        int src = v.docs ? sprig_view_query_with_docs(cc.db, &q, &l)
                         : sprig_view_query_mappings(cc.db, &q, &l);
        rc = src ? cli_fail(src) : print_list(&cc, l, true);
    }
    sprig_mapping_list_free(l);
    vargs_free(&v);
    return rc;
}

static int
view_reduce(cli *c, int argc, char **argv)
{
    vargs v = {0};
    cli_coll cc;
    sprig_view_query q;
    int rc = prepare(c, argc, argv, reduce_usage, &v, &cc, &q);
    if (rc == CLI_CONTINUE && v.group) {
        sprig_mapping_list *l = NULL;
        int src = sprig_view_reduce_grouped(cc.db, &q, &l);
        rc = src ? cli_fail(src) : print_list(&cc, l, false);
        sprig_mapping_list_free(l);
    } else if (rc == CLI_CONTINUE) {
        sprig_buf out = {0};
        int src = sprig_view_reduce(cc.db, &q, &out);
        jw w = {0};
        jw_contents(&w, sprig_buf_bytes(&out));
        rc = src ? cli_fail(src) : jw_print(&w);
        if (src) {
            jw_free(&w);
        }
        sprig_buf_clear(&out);
    }
    vargs_free(&v);
    return rc;
}

static const cli_cmd view_cmds[] = {
    {"query", view_query},
    {"reduce", view_reduce},
    {NULL, NULL},
};

int
cli_cmd_view(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, view_cmds, argc - 1, argv + 1, view_usage);
}
