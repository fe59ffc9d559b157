/*
 * cmd_db.c -- `sprig db create|list|delete`: the databases of a storage
 * (F8), through sprig_storage_create_database(), _list_databases() and
 * _delete_database().  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <sprig/auth.h>

#include <stdio.h>
#include <string.h>

static const char db_usage[] =
    "usage: sprig [--path DIR] db COMMAND ...\n"
    "\n"
    "  db create NAME [--schema SCHEMA]\n"
    "      create database NAME; the schema defaults to the only registered\n"
    "      one.  Exit 4 if it exists.\n"
    "  db list\n"
    "      print the databases as JSON: [{\"name\":..,\"schema\":..}]\n"
    "  db delete NAME\n"
    "      delete database NAME and all its documents.  Exit 3 if there is\n"
    "      none.\n";

static const char create_usage[] =
    "usage: sprig [--path DIR] db create NAME [--schema SCHEMA]\n"
    "\n"
    "Create database NAME ([A-Za-z0-9_][A-Za-z0-9._-]*, at most 64 bytes)\n"
    "with registered schema SCHEMA, by default the only registered one.\n"
    "Creates the storage if needed.  Prints {\"name\":..,\"schema\":..};\n"
    "exit 4 if the database exists.\n";

static const char list_usage[] =
    "usage: sprig [--path DIR] db list\n"
    "\n"
    "Print the databases as JSON: [{\"name\":..,\"schema\":..}].\n";

static const char delete_usage[] =
    "usage: sprig [--path DIR] db delete NAME\n"
    "\n"
    "Delete database NAME and all its documents.  Prints\n"
    "{\"name\":..,\"deleted\":true}; exit 3 if there is no such database.\n";

static void
write_db(jw *w, const char *name, const char *schema)
{
    jw_raw(w, "{");
    jw_key(w, "name");
    jw_cstr(w, name);
    jw_raw(w, ",");
    jw_key(w, "schema");
    jw_cstr(w, schema);
    jw_raw(w, "}");
}

/* The only registered schema's name, copied into `out`. */
static int
only_schema(cli *c, char *out, size_t n)
{
    sprig_schema_list *l;
    int src = sprig_storage_list_schemas(c->st, &l);
    if (src) {
        return cli_fail(src);
    }
    size_t all = sprig_schema_list_count(l), count = 0;
    char names[512] = "";
    for (size_t i = 0; i < all; i++) {
        const char *nm = sprig_schema_list_get(l, i)->name;
        if (strcmp(nm, SPRIG_AUTH_DB) == 0) {
            continue; /* the admin records' own schema */
        }
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", count++ ? ", " : "",
                 nm);
    }
    if (count == 1) {
        snprintf(out, n, "%s", names);
    }
    sprig_schema_list_free(l);
    if (count == 0) {
        return cli_usage(create_usage,
                         "no schema is registered in '%s'; "
                         "define one with 'sprig schema define'",
                         cli_where(c));
    }
    if (count > 1) {
        return cli_usage(create_usage,
                         "several schemas are registered (%s): choose one "
                         "with --schema",
                         names);
    }
    return CLI_CONTINUE;
}

static int
db_create(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *schema = NULL;
    char only[256];
    const cli_opt opts[] = {{"--schema", &schema, NULL}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, create_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, true) : rc;
    if (rc == CLI_CONTINUE && !schema) {
        rc = only_schema(c, only, sizeof only);
        schema = only;
    }
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    int src = sprig_storage_create_database(c->st, a.pos[0], schema, false);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    write_db(&w, a.pos[0], schema);
    return jw_print(&w);
}

static int
db_list(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, list_usage, 0, 0, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_database_list *l;
    int src = sprig_storage_list_databases(c->st, &l);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "[");
    for (size_t i = 0; i < sprig_database_list_count(l); i++) {
        jw_raw(&w, i ? "," : "");
        write_db(&w, sprig_database_list_name(l, i),
                 sprig_database_list_schema(l, i));
    }
    jw_raw(&w, "]");
    sprig_database_list_free(l);
    return jw_print(&w);
}

static int
db_delete(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, delete_usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    int src = sprig_storage_delete_database(c->st, a.pos[0]);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "{");
    jw_key(&w, "name");
    jw_cstr(&w, a.pos[0]);
    jw_raw(&w, ",\"deleted\":true}");
    return jw_print(&w);
}

static const cli_cmd db_cmds[] = {
    {"create", db_create},
    {"list", db_list},
    {"delete", db_delete},
    {NULL, NULL},
};

int
cli_cmd_db(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, db_cmds, argc - 1, argv + 1, db_usage);
}
