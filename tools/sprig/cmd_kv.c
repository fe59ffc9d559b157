/*
 * cmd_kv.c -- `sprig kv get|set|incr|del|list`: the key-value store (F6) of
 * the database chosen with --db, as JSON.  Values are typed: bytes (the
 * default; printed as a JSON string), i64, u64 or f64 (printed as JSON
 * numbers), named by --type on input and by "type" on output.  Part of
 * tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char kv_usage[] =
    "usage: sprig [--path DIR] [--db NAME] kv COMMAND ...\n"
    "\n"
    "  kv get KEY [--ns NS] [--delete]\n"
    "  kv set KEY VALUE [--ns NS] [--type T] [--expire-in MS | --expire-at "
    "MS]\n"
    "         [--keep-expiration] [--if-vacant | --if-present] [--previous]\n"
    "  kv incr KEY [AMOUNT] [--ns NS] [--type T] [--decrement] "
    "[--saturating]\n"
    "  kv del KEY [--ns NS]\n"
    "  kv list [--ns NS] [--prefix P] [--after KEY] [--limit N]\n"
    "\n"
    "Keys live in namespaces (--ns; default: the default namespace).\n"
    "Values have a type T: bytes (the default), i64, u64 or f64.  Each\n"
    "command takes --help.\n";

static const char get_usage[] =
    "usage: sprig [--path DIR] [--db NAME] kv get KEY [--ns NS] [--delete]\n"
    "\n"
    "Print {\"key\":..,\"type\":..,\"value\":..} (bytes values as a string).\n"
    "--delete removes the key in the same step.  Exit 3 if there is no\n"
    "such key (or it expired).\n";

static const char set_usage[] =
    "usage: sprig [--path DIR] [--db NAME] kv set KEY VALUE [--ns NS]\n"
    "                 [--type bytes|i64|u64|f64] [--expire-in MS |\n"
    "                 --expire-at MS] [--keep-expiration]\n"
    "                 [--if-vacant | --if-present] [--previous]\n"
    "\n"
    "Store VALUE (of --type, default bytes) under KEY (put -- before a\n"
    "VALUE starting with '-', e.g. -- -5).  --expire-in MS:\n"
    "expire MS milliseconds from now; --expire-at MS: at MS since the Unix\n"
    "epoch.  --keep-expiration keeps an existing key's expiration.\n"
    "--if-vacant / --if-present set only if the key is absent / exists.\n"
    "Prints {\"key\":..,\"status\":..} with status inserted, updated,\n"
    "deleted (an expiration already past) or not_changed (the check\n"
    "failed; exit 0), and with --previous \"previous\": the old\n"
    "{\"type\":..,\"value\":..} or null.\n";

static const char incr_usage[] =
    "usage: sprig [--path DIR] [--db NAME] kv incr KEY [AMOUNT] [--ns NS]\n"
    "                 [--type i64|u64|f64] [--decrement] [--saturating]\n"
    "\n"
    "Add AMOUNT (default 1, of --type, default i64) to the number under\n"
    "KEY atomically (--decrement: subtract) and print the new\n"
    "{\"key\":..,\"type\":..,\"value\":..}.  A missing key starts at 0; a\n"
    "stored number keeps its type.  Without --saturating, a result out of\n"
    "the type's range fails (exit 1) and changes nothing; with it, the\n"
    "result is clamped.  Exit 2 if KEY holds bytes.\n";

static const char del_usage[] =
    "usage: sprig [--path DIR] [--db NAME] kv del KEY [--ns NS]\n"
    "\n"
    "Remove KEY.  Prints {\"key\":..,\"status\":\"deleted\"} or, when there\n"
    "was no such key, \"not_changed\" (exit 0 either way).\n";

static const char list_usage[] =
    "usage: sprig [--path DIR] [--db NAME] kv list [--ns NS] [--prefix P]\n"
    "                 [--after KEY] [--limit N]\n"
    "\n"
    "Print the keys of the namespace that start with P, in byte order, as\n"
    "a JSON array of {\"key\":..,\"type\":..,\"value\":..} (with\n"
    "\"expire_at\": ms since the epoch, for keys that expire), at most N\n"
    "(0: no limit).  For the next page pass the last key as --after.\n";

/* ---- shared ------------------------------------------------------------ */

static int
open_db(cli *c)
{
    int rc = cli_open(c, false);
    if (rc == CLI_CONTINUE && !c->db) {
        int src = sprig_storage_open_database(c->st, c->dbname, &c->db);
        rc = src ? cli_fail(src) : CLI_CONTINUE;
    }
    return rc;
}

static const char *const type_names[] = {"bytes", "i64", "u64", "f64"};

static int
parse_type(const char *usage, const char *arg, sprig_value_kind *out)
{
    for (int k = 0; k < 4; k++) {
        if (strcmp(arg, type_names[k]) == 0) {
            *out = (sprig_value_kind)k;
            return CLI_CONTINUE;
        }
    }
    return cli_usage(usage, "unknown type '%s' (bytes, i64, u64 or f64)", arg);
}

/* Parse `arg` as a value of kind `k` (bytes borrow `arg`). */
static int
parse_value(const char *usage, const char *arg, sprig_value_kind k,
            sprig_value *out)
{
    char *end = NULL;
    errno = 0;
    switch (k) {
    case SPRIG_VALUE_BYTES: *out = sprig_value_of_bytes(sprig_str(arg)); break;
    case SPRIG_VALUE_I64:
        *out = sprig_value_of_i64(strtoll(arg, &end, 10));
        break;
    case SPRIG_VALUE_U64:
        *out = sprig_value_of_u64(strtoull(arg, &end, 10));
        end = arg[0] == '-' ? (char *)arg : end; /* strtoull takes "-1" */
        break;
    case SPRIG_VALUE_F64: *out = sprig_value_of_f64(strtod(arg, &end)); break;
    case SPRIG_VALUE_NONE: break; /* never asked for */
    }
    if (end && (end == arg || *end || errno == ERANGE)) {
        return cli_usage(usage, "'%s' is not a %s", arg, type_names[k]);
    }
    return CLI_CONTINUE;
}

static void
jw_value(jw *w, const sprig_value *v)
{
    char b[40];
    if (v->kind == SPRIG_VALUE_NONE) {
        jw_raw(w, "\"type\":null,\"value\":null");
        return;
    }
    jw_raw(w, "\"type\":\"");
    jw_raw(w, type_names[v->kind]);
    jw_raw(w, "\",\"value\":");
    switch (v->kind) {
    case SPRIG_VALUE_BYTES: jw_str(w, v->bytes); return;
    case SPRIG_VALUE_I64: snprintf(b, sizeof b, "%" PRId64, v->num.i64); break;
    case SPRIG_VALUE_U64: snprintf(b, sizeof b, "%" PRIu64, v->num.u64); break;
    case SPRIG_VALUE_F64:
        if (!isfinite(v->num.f64)) { /* JSON has no NaN or infinities */
            snprintf(b, sizeof b, "\"%g\"", v->num.f64);
        } else {
            snprintf(b, sizeof b, "%.17g", v->num.f64);
        }
        break;
    case SPRIG_VALUE_NONE: break;
    }
    jw_raw(w, b);
}

/* `{"key":KEY,` */
static void
jw_key_open(jw *w, const char *key)
{
    jw_raw(w, "{");
    jw_key(w, "key");
    jw_cstr(w, key);
    jw_raw(w, ",");
}

static const char *
status_name(sprig_kv_status st)
{
    switch (st) {
    case SPRIG_KV_INSERTED: return "inserted";
    case SPRIG_KV_UPDATED: return "updated";
    case SPRIG_KV_DELETED: return "deleted";
    case SPRIG_KV_NOT_CHANGED: break;
    }
    return "not_changed";
}

/* ---- get, del ---------------------------------------------------------- */

static int
kv_get(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *ns = NULL;
    bool del = false;
    const cli_opt opts[] = {
        {"--ns", &ns, NULL}, {"--delete", NULL, &del}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, get_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_value v;
    int src = sprig_kv_get(c->db, ns, a.pos[0], del, &v);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_key_open(&w, a.pos[0]);
    jw_value(&w, &v);
    jw_raw(&w, del ? ",\"deleted\":true}" : "}");
    sprig_value_clear(&v);
    return jw_print(&w);
}

static int
print_status(const char *key, sprig_kv_status st, const sprig_value *prev)
{
    jw w = {0};
    jw_key_open(&w, key);
    jw_raw(&w, "\"status\":\"");
    jw_raw(&w, status_name(st));
    jw_raw(&w, "\"");
    if (prev) {
        jw_raw(&w, ",\"previous\":");
        if (prev->kind != SPRIG_VALUE_NONE) {
            jw_raw(&w, "{");
            jw_value(&w, prev);
            jw_raw(&w, "}");
        } else {
            jw_raw(&w, "null");
        }
    }
    jw_raw(&w, "}");
    return jw_print(&w);
}

static int
kv_del(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *ns = NULL;
    const cli_opt opts[] = {{"--ns", &ns, NULL}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, del_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_kv_status st;
    int src = sprig_kv_delete(c->db, ns, a.pos[0], &st);
    return src ? cli_fail(src) : print_status(a.pos[0], st, NULL);
}

/* ---- set --------------------------------------------------------------- */

typedef struct set_args {
    const char *ns, *type, *expire_in, *expire_at;
    bool keep, vacant, present, previous;
} set_args;

static int
set_opts(const set_args *s, sprig_kv_set_opts *so)
{
    memset(so, 0, sizeof *so);
    if (s->vacant && s->present) {
        return cli_usage(set_usage, "--if-vacant and --if-present exclude "
                                    "each other");
    }
    if (s->expire_in && s->expire_at) {
        return cli_usage(set_usage, "give --expire-in or --expire-at, not "
                                    "both");
    }
    const char *e = s->expire_in ? s->expire_in : s->expire_at;
    uint64_t ms = 0;
    if (e && (!cli_parse_uint(e, UINT64_MAX, &ms) || ms == 0)) {
        return cli_usage(set_usage, "'%s' is not a positive number of ms", e);
    }
    so->expire_in_ms = s->expire_in ? ms : 0;
    so->expire_at_ms = s->expire_at ? ms : 0;
    so->keep_expiration = s->keep;
    so->check = s->vacant    ? SPRIG_KV_ONLY_IF_VACANT
                : s->present ? SPRIG_KV_ONLY_IF_PRESENT
                             : SPRIG_KV_ANY;
    so->return_previous = s->previous;
    return CLI_CONTINUE;
}

static int
kv_set(cli *c, int argc, char **argv)
{
    cli_args a;
    set_args s = {0};
    const cli_opt opts[] = {{"--ns", &s.ns, NULL},
                            {"--type", &s.type, NULL},
                            {"--expire-in", &s.expire_in, NULL},
                            {"--expire-at", &s.expire_at, NULL},
                            {"--keep-expiration", NULL, &s.keep},
                            {"--if-vacant", NULL, &s.vacant},
                            {"--if-present", NULL, &s.present},
                            {"--previous", NULL, &s.previous},
                            {NULL, NULL, NULL}};
    sprig_value_kind kind = SPRIG_VALUE_BYTES;
    sprig_kv_set_opts so;
    sprig_value v;
    int rc = cli_parse(argc, argv, opts, set_usage, 2, 2, &a);
    rc = rc == CLI_CONTINUE && s.type ? parse_type(set_usage, s.type, &kind)
                                      : rc;
    rc = rc == CLI_CONTINUE ? parse_value(set_usage, a.pos[1], kind, &v) : rc;
    rc = rc == CLI_CONTINUE ? set_opts(&s, &so) : rc;
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_kv_status st;
    sprig_value prev;
    int src = sprig_kv_set(c->db, s.ns, a.pos[0], &v, &so, &st,
                           s.previous ? &prev : NULL);
    if (src) {
        return cli_fail(src);
    }
    rc = print_status(a.pos[0], st, s.previous ? &prev : NULL);
    if (s.previous) {
        sprig_value_clear(&prev);
    }
    return rc;
}

/* ---- incr -------------------------------------------------------------- */

static int
kv_incr(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *ns = NULL, *type = NULL;
    bool dec = false, sat = false;
    const cli_opt opts[] = {{"--ns", &ns, NULL},
                            {"--type", &type, NULL},
                            {"--decrement", NULL, &dec},
                            {"--saturating", NULL, &sat},
                            {NULL, NULL, NULL}};
    sprig_value_kind kind = SPRIG_VALUE_I64;
    sprig_value amount;
    int rc = cli_parse(argc, argv, opts, incr_usage, 1, 2, &a);
    rc = rc == CLI_CONTINUE && type ? parse_type(incr_usage, type, &kind) : rc;
    if (rc == CLI_CONTINUE && kind == SPRIG_VALUE_BYTES) {
        rc = cli_usage(incr_usage, "an amount is a number, not bytes");
    }
    rc = rc == CLI_CONTINUE
             ? parse_value(incr_usage, a.n > 1 ? a.pos[1] : "1", kind, &amount)
             : rc;
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_value out;
    int src = dec ? sprig_kv_decrement(c->db, ns, a.pos[0], &amount, sat, &out)
                  : sprig_kv_increment(c->db, ns, a.pos[0], &amount, sat, &out);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_key_open(&w, a.pos[0]);
    jw_value(&w, &out);
    jw_raw(&w, "}");
    return jw_print(&w);
}

/* ---- list -------------------------------------------------------------- */

static int
kv_list(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *ns = NULL, *prefix = NULL, *after = NULL, *limit = NULL;
    const cli_opt opts[] = {{"--ns", &ns, NULL},
                            {"--prefix", &prefix, NULL},
                            {"--after", &after, NULL},
                            {"--limit", &limit, NULL},
                            {NULL, NULL, NULL}};
    uint64_t n = 0;
    int rc = cli_parse(argc, argv, opts, list_usage, 0, 0, &a);
    if (rc == CLI_CONTINUE && limit && !cli_parse_uint(limit, UINT32_MAX, &n)) {
        rc = cli_usage(list_usage, "--limit '%s' is not a number up to %u",
                       limit, UINT32_MAX);
    }
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_kv_key_list *l;
    int src = sprig_kv_list_keys(c->db, ns, prefix, after, (uint32_t)n, &l);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "[");
    for (size_t i = 0; i < sprig_kv_key_list_count(l); i++) {
        jw_raw(&w, i ? "," : "");
        jw_key_open(&w, sprig_kv_key_list_key(l, i));
        jw_value(&w, sprig_kv_key_list_value(l, i));
        if (sprig_kv_key_list_expire_at(l, i)) {
            jw_raw(&w, ",\"expire_at\":");
            jw_u64(&w, sprig_kv_key_list_expire_at(l, i));
        }
        jw_raw(&w, "}");
    }
    jw_raw(&w, "]");
    sprig_kv_key_list_free(l);
    return jw_print(&w);
}

static const cli_cmd kv_cmds[] = {
    {"get", kv_get}, {"set", kv_set},   {"incr", kv_incr},
    {"del", kv_del}, {"list", kv_list}, {NULL, NULL},
};

int
cli_cmd_kv(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, kv_cmds, argc - 1, argv + 1, kv_usage);
}
