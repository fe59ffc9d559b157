/*
 * main.c -- entry point of `sprig`, Sprig's command-line tool: parses the
 * global options (--path, --db, --url, --ca, --schema) before the command,
 * and registers them so they are accepted after it too (cli_set_globals),
 * then dispatches to the command groups (schema, db, doc, kv, view), serve
 * and `demo` through the top-level command table.  The
 * commands live in cmd_*.c and demo.c; shared helpers in cli.c (cli.h).
 * Exit statuses are listed in the usage text below and in cli.h.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char top_usage[] =
    "usage: sprig [--path DIR | --url URL] [--db NAME] COMMAND ...\n"
    "\n"
    "Sprig's command-line tool: schemas, databases and documents of a\n"
    "storage, local or on a server.\n"
    "\n"
    "Global options (before or after the command; a command's own option\n"
    "of the same name wins, as in db create NAME --schema SCHEMA):\n"
    "  --path DIR   storage directory (default ./sprig-data)\n"
    "  --db NAME    database (default \"default\", the one\n"
    "               sprig_db_open_local() uses)\n"
    "  --url URL    the storage at URL instead of --path: ws://HOST:PORT or\n"
    "               wss://HOST:PORT (a server), file:DIR, mem: (in memory)\n"
    "  --ca FILE    wss: trust the server certificate (or CA) in FILE\n"
    "  --schema FILE\n"
    "               register the JSON schema file FILE (collections, id\n"
    "               kinds, declarative views) before the command runs\n"
    "  --user NAME  --url: log in as NAME; the password comes from\n"
    "               --password-env VAR, else a prompt on the terminal\n"
    "  --token-file FILE\n"
    "               --url: log in with the token in FILE (ID:SECRET)\n"
    "  --help, -h   this help; every command takes --help too\n"
    "  --version    print the version\n"
    "\n"
    "Commands:\n"
    "  schema list\n"
    "  schema define NAME COLL[:u64|:natural]...\n"
    "  db create NAME [--schema SCHEMA]\n"
    "  db list\n"
    "  db delete NAME\n"
    "  doc put COLLECTION [--id ID] [--overwrite] (JSON | -)\n"
    "  doc get COLLECTION ID\n"
    "  doc list COLLECTION [--from ID] [--to ID] [--desc] [--limit N]"
    " [--headers]\n"
    "  doc delete COLLECTION ID [--revision N]\n"
    "  doc count COLLECTION\n"
    "  kv get|set|incr|del|list ...  the key-value store (sprig kv --help)\n"
    "  view query COLLECTION VIEW [--key JSON|--range FROM TO|--prefix JSON]\n"
    "             [--desc] [--limit N] [--docs]\n"
    "  view reduce COLLECTION VIEW [...same match...] [--group]\n"
    "  serve [--ws HOST:PORT] ...   run a server (sprig serve --help)\n"
    "  admin user|role|group|token ...  who may do what (sprig admin --help)\n"
    "  demo         a guided tour: writes, conflicts, a transaction\n"
    "\n"
    "Ids are decimal numbers in collections with u64 ids, strings in\n"
    "collections with natural ids.  Use -- before an argument that starts\n"
    "with '-' (e.g. the JSON -1).\n"
    "\n"
    "Output: one JSON value on stdout (demo: text), indented by two spaces\n"
    "when stdout is a terminal, on one line otherwise.  Errors go to stderr\n"
    "as 'sprig: <kind>: <detail>'.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  other error\n"
    "  2  usage error: bad command line, or a malformed argument\n"
    "  3  not found: no such storage, database or document\n"
    "  4  conflict: wrong revision, or the thing exists already\n"
    "  5  busy: another process has the storage open\n";

static const cli_cmd top_cmds[] = {
    {"schema", cli_cmd_schema},
    {"db", cli_cmd_db},
    {"doc", cli_cmd_doc},
    {"demo", cli_cmd_demo},
    {"kv", cli_cmd_kv},
    {"serve", cli_cmd_serve},
    {"view", cli_cmd_view},
    {"admin", cli_cmd_admin},
    {NULL, NULL},
};

/* Parse the options before the command; *i ends on the command.  `opts`
 * ends with --version, which only goes before the command. */
static int
parse_globals(const cli_opt *opts, const bool *version, int argc, char **argv,
              int *i)
{
    for (*i = 1; *i < argc && argv[*i][0] == '-'; ++*i) {
        if (strcmp(argv[*i], "--") == 0) {
            ++*i;
            break;
        }
        int rc = cli_take_opt(opts, argc, argv, i, top_usage);
        if (rc != CLI_CONTINUE) {
            return rc;
        }
        if (*version) {
            printf("sprig %s\n", sprig_version());
            return CLI_OK;
        }
    }
    return CLI_CONTINUE;
}

int
main(int argc, char **argv)
{
    cli c = {.prog = argc > 0 ? argv[0] : "sprig",
             .path = "./sprig-data",
             .dbname = "default"};
    bool version = false;
    cli_opt globals[] = {
        {"--path", &c.path, NULL},
        {"--db", &c.dbname, NULL},
        {"--url", &c.url, NULL},
        {"--ca", &c.ca_file, NULL},
        {"--schema", &c.schema_file, NULL},
        {"--user", &c.user, NULL},
        {"--password-env", &c.password_env, NULL},
        {"--token-file", &c.token_file, NULL},
        {"--version", NULL, &version},
        {NULL, NULL, NULL},
    };
    int i;
    int rc = parse_globals(globals, &version, argc, argv, &i);
    if (rc == CLI_CONTINUE) {
        globals[8].name = NULL; /* after the command, without --version */
        cli_set_globals(globals);
        rc = cli_dispatch(&c, top_cmds, argc - i, argv + i, top_usage);
    }
    cli_close(&c);
    return rc;
}
