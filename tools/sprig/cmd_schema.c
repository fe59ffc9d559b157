/*
 * cmd_schema.c -- `sprig schema list` and `sprig schema define`: the schemas
 * a storage has recorded (by programs registering them, or by this tool),
 * printed as JSON, and new ones defined from the command line.  Part of
 * tools/sprig/ (see cli.h); uses sprig_storage_list_schemas() and
 * sprig_storage_register_schema().
 */
#include "cli.h"

#include <string.h>

static const char schema_usage[] =
    "usage: sprig [--path DIR] schema COMMAND ...\n"
    "\n"
    "  schema [NAME]\n"
    "      without NAME: as schema list; with NAME: print that schema as\n"
    "      {\"name\":..,\"collections\":[..]} (exit 3 if there is none)\n"
    "  schema list\n"
    "      print the registered schemas as JSON:\n"
    "      [{\"name\":..,\"collections\":[{\"name\":..,\"ids\":\"u64\"|"
    "\"natural\"}]}]\n"
    "  schema define NAME COLL[:u64|:natural]...\n"
    "      register schema NAME with these collections (ids u64 unless\n"
    "      :natural is given) and print it.  Redefining a schema may add\n"
    "      collections, not drop them or change their ids.\n";

static const char list_usage[] = "usage: sprig [--path DIR] schema list\n"
                                 "\n"
                                 "Print the registered schemas as JSON.\n";

static const char define_usage[] =
    "usage: sprig [--path DIR] schema define NAME COLL[:u64|:natural]...\n"
    "\n"
    "Register schema NAME with the given collections; a collection's ids\n"
    "are u64 (pushed by the database) unless :natural (named by the\n"
    "writer) is given.  Creates the storage if needed.\n";

static const char *
kind_name(sprig_id_kind k)
{
    return k == SPRIG_ID_NATURAL ? "natural" : "u64";
}

static void
write_schema(jw *w, const sprig_schema_def *s)
{
    jw_raw(w, "{");
    jw_key(w, "name");
    jw_cstr(w, s->name);
    jw_raw(w, ",");
    jw_key(w, "collections");
    jw_raw(w, "[");
    for (size_t j = 0; j < s->n_collections; j++) {
        jw_raw(w, j ? ",{" : "{");
        jw_key(w, "name");
        jw_cstr(w, s->collections[j].name);
        jw_raw(w, ",");
        jw_key(w, "ids");
        jw_cstr(w, kind_name(s->collections[j].id_kind));
        jw_raw(w, "}");
    }
    jw_raw(w, "]}");
}

static int
schema_list(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, list_usage, 0, 0, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_schema_list *l;
    int src = sprig_storage_list_schemas(c->st, &l);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "[");
    for (size_t i = 0; i < sprig_schema_list_count(l); i++) {
        jw_raw(&w, i ? "," : "");
        write_schema(&w, sprig_schema_list_get(l, i));
    }
    jw_raw(&w, "]");
    sprig_schema_list_free(l);
    return jw_print(&w);
}

/* Parse "COLL[:u64|:natural]" (cutting `spec` at the colon). */
static int
parse_coll(char *spec, sprig_collection_def *out)
{
    char *colon = strchr(spec, ':');
    out->name = spec;
    out->id_kind = SPRIG_ID_U64;
    if (!colon) {
        return CLI_CONTINUE;
    }
    *colon = 0;
    if (strcmp(colon + 1, "natural") == 0) {
        out->id_kind = SPRIG_ID_NATURAL;
    } else if (strcmp(colon + 1, "u64") != 0) {
        return cli_usage(define_usage,
                         "collection '%s': ids are u64 or natural, not '%s'",
                         spec, colon + 1);
    }
    return CLI_CONTINUE;
}

/* A redefinition of `old` may add collections, not drop one or change its
 * ids.  What the command line cannot say (flags, views) is carried over
 * from `old` into `colls`. */
static int
carry_over(const sprig_schema_def *old, sprig_collection_def *colls, size_t n)
{
    for (size_t i = 0; i < old->n_collections; i++) {
        const sprig_collection_def *oc = &old->collections[i];
        sprig_collection_def *nc = NULL;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(colls[j].name, oc->name) == 0 &&
                colls[j].id_kind == oc->id_kind) {
                nc = &colls[j];
            }
        }
        if (!nc) {
            return cli_err(SPRIG_ECONFLICT,
                           "schema '%s' has collection '%s' with %s ids; a "
                           "new definition must keep it, with the same ids",
                           old->name, oc->name, kind_name(oc->id_kind));
        }
        *nc = *oc; /* every field, so whatever the storage recorded */
    }
    return CLI_CONTINUE;
}

/* Register `def` (collections `colls`), merged with its old definition. */
static int
register_schema(cli *c, sprig_schema_def *def, sprig_collection_def *colls)
{
    sprig_schema_list *l;
    int src = sprig_storage_list_schemas(c->st, &l);
    if (src) {
        return cli_fail(src);
    }
    int rc = CLI_CONTINUE;
    for (size_t i = 0; i < sprig_schema_list_count(l); i++) {
        const sprig_schema_def *old = sprig_schema_list_get(l, i);
        if (strcmp(old->name, def->name) == 0) {
            rc = carry_over(old, colls, def->n_collections);
        }
    }
    src = rc == CLI_CONTINUE ? sprig_storage_register_schema(c->st, def) : 0;
    sprig_schema_list_free(l); /* after: `colls` may borrow its views */
    return src ? cli_fail(src) : rc;
}

static int
schema_define(cli *c, int argc, char **argv)
{
    cli_args a;
    sprig_collection_def colls[CLI_MAX_POS];
    memset(colls, 0, sizeof colls);
    int rc = cli_parse(argc, argv, NULL, define_usage, 2, CLI_MAX_POS, &a);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    for (int i = 1; rc == CLI_CONTINUE && i < a.n; i++) {
        rc = parse_coll(a.pos[i], &colls[i - 1]);
    }
    sprig_schema_def def = {.name = a.pos[0],
                            .collections = colls,
                            .n_collections = (size_t)a.n - 1};
    rc = rc == CLI_CONTINUE ? cli_open(c, true) : rc;
    rc = rc == CLI_CONTINUE ? register_schema(c, &def, colls) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    jw w = {0};
    write_schema(&w, &def);
    return jw_print(&w);
}

static const cli_cmd schema_cmds[] = {
    {"list", schema_list},
    {"define", schema_define},
    {NULL, NULL},
};

/* `sprig schema NAME`: one schema. */
static int
schema_show(cli *c, const char *name)
{
    int rc = cli_open(c, false);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_schema_list *l;
    int src = sprig_storage_list_schemas(c->st, &l);
    if (src) {
        return cli_fail(src);
    }
    const sprig_schema_def *found = NULL;
    for (size_t i = 0; i < sprig_schema_list_count(l); i++) {
        if (strcmp(sprig_schema_list_get(l, i)->name, name) == 0) {
            found = sprig_schema_list_get(l, i);
        }
    }
    jw w = {0};
    if (found) {
        write_schema(&w, found);
    }
    sprig_schema_list_free(l);
    return found ? jw_print(&w)
                 : cli_err(SPRIG_ENOTFOUND, "no schema named '%s' in '%s'",
                           name, cli_where(c));
}

int
cli_cmd_schema(cli *c, int argc, char **argv)
{
    if (argc == 1) { /* `sprig schema`: the list */
        static char list[] = "list";
        char *args[] = {list, NULL};
        return schema_list(c, 1, args);
    }
    bool known = argv[1][0] == '-';
    for (size_t i = 0; schema_cmds[i].name && !known; i++) {
        known = strcmp(schema_cmds[i].name, argv[1]) == 0;
    }
    if (!known && argc == 2) {
        return schema_show(c, argv[1]);
    }
    return cli_dispatch(c, schema_cmds, argc - 1, argv + 1, schema_usage);
}
