/*
 * main.c -- entry point of `sprig`, Sprig's command-line tool: parses the
 * global options (global_options(): --path, --db, --url, --ca, --schema)
 * before the command, and registers them so they are accepted after it too
 * (cli_set_globals), then dispatches to the command groups (schema, db, doc,
 * kv, view), serve and `demo` through the top-level command table.  The
 * commands live in cmd_*.c and demo.c; shared helpers in cli.c (cli.h).
 * Exit statuses are listed in the usage text below and in cli.h.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    "  --url URL    the storage at URL instead of --path: ws://HOST:PORT,\n"
    "               wss://HOST:PORT, quic://HOST[:PORT] or sprig://... (a\n"
    "               server), file:DIR, mem: (in memory)\n"
    "  --ca FILE|SHA256\n"
    "               wss, quic: trust the server certificate (or CA) in\n"
    "               FILE, or the certificate with this SHA-256 fingerprint\n"
    "  --schema FILE\n"
    "               register the JSON schema file FILE (collections, id\n"
    "               kinds, declarative views) before the command runs\n"
    "  --vault-key FILE\n"
    "               the key file of an encrypted storage (default\n"
    "               DIR/vault.key); $SPRIG_PASSPHRASE, or --ask-passphrase\n"
    "               (read from the terminal), for one locked by a passphrase\n"
    "  --encrypt, --compress\n"
    "               encrypt / LZ4-compress every value from now on (recorded\n"
    "               in the storage: later runs need not repeat them)\n"
    "  --read-only  open the local storage read-only (a read-only file\n"
    "               system, a copy): writes fail with 'permission denied'\n"
    "  --format json|table|csv\n"
    "               how a command's result is shown (default json);\n"
    "               streams (doc export, pubsub subscribe, log --follow)\n"
    "               are NDJSON whatever the format\n"
    "  --user NAME  --url: log in as NAME; the password comes from\n"
    "               --password-env VAR, else a prompt on the terminal\n"
    "  --token-file FILE\n"
    "               --url: log in with the token in FILE (ID:SECRET)\n"
    "  --no-follow  --url of a cluster: a write refused by a follower fails\n"
    "               with 'not the leader' instead of following the leader\n"
    "  --linearizable\n"
    "               --url of a cluster: reads are linearizable (the leader\n"
    "               confirms it leads before reading; see docs/cluster.md)\n"
    "  --help, -h   this help; every command takes --help too\n"
    "  --version    print the version\n"
    "\n"
    "Commands:\n"
    "  schema [NAME]    every schema, or the one named NAME\n"
    "  schema list\n"
    "  schema define NAME COLL[:u64|:natural]...\n"
    "  db create NAME [--schema SCHEMA]\n"
    "  db list\n"
    "  db delete NAME\n"
    "  doc put COLLECTION [--id ID] [--overwrite] (JSON | @FILE | FILE | -)\n"
    "  doc get COLLECTION ID\n"
    "  doc list COLLECTION [--from ID] [--to ID] [--desc] [--limit N]"
    " [--headers]\n"
    "  doc delete COLLECTION ID [--revision N]\n"
    "  doc count COLLECTION\n"
    "  doc update COLLECTION ID (JSON | @FILE | FILE | -) [--revision N]\n"
    "  doc import COLLECTION [FILE | -] [--id-field NAME] ...  NDJSON or a\n"
    "               JSON array, in bulk (sprig doc import --help)\n"
    "  doc export COLLECTION [FILE | -] [--id-field NAME] ...  NDJSON\n"
    "  kv get|set|incr|del|list ...  the key-value store (sprig kv --help)\n"
    "  view query COLLECTION VIEW [--key JSON|--range FROM TO|--prefix JSON]\n"
    "             [--desc] [--limit N] [--docs] [--after KEY [--after-id ID]]\n"
    "  view reduce COLLECTION VIEW [...same match...] [--group] [--after KEY]\n"
    "  pubsub subscribe TOPIC... | publish TOPIC MESSAGE\n"
    "  log [--since ID] [--limit N] [--follow]   the transaction log\n"
    "  watch [COLLECTION] [--from ID] [--limit N] [--contents]\n"
    "               follow the changes feed: a JSON line per change\n"
    "  file put|get|cat|ls|stat|rm|mv|gc ...  the file store (sprig file "
    "--help)\n"
    "  serve [--ws HOST:PORT] ...   run a server (sprig serve --help)\n"
    "  certificate install-self-signed|install|show  the server's TLS\n"
    "               certificate (sprig certificate --help)\n"
    "  vault rotate re-encrypt under a new master key, online\n"
    "  check        verify the storage (views, log, key-value, LMDB)\n"
    "  backup DIR | restore DIR     a consistent backup of every database,\n"
    "               and its restore into an empty storage (--json)\n"
    "  export DIR | import DIR      every database as JSON lines, and back\n"
    "  compact [NAME...] [--all]    compact databases in place\n"
    "  admin user|role|group|token ...  who may do what (sprig admin --help)\n"
    "  apis                    a server's APIs (--url; sprig apis --help)\n"
    "  call NAME [JSON|-]      call a server's custom API (sprig call --help)\n"
    "  clients      --url: the connections open on the server\n"
    "  cluster status|add|remove|transfer-leader ...  --url: a Raft\n"
    "               cluster's nodes (sprig cluster --help)\n"
    "  demo         a guided tour: writes, conflicts, a transaction\n"
    "  shell        an interactive shell: history, tab completion, a\n"
    "               current database (also `sprig` alone on a terminal)\n"
    "\n"
    "Ids are decimal numbers in collections with u64 ids, strings in\n"
    "collections with natural ids.  Use -- before an argument that starts\n"
    "with '-' and is not a number (kv set K -- -x); -1 needs none.\n"
    "\n"
    "Output: one JSON value on stdout (demo: text), indented by two spaces\n"
    "when stdout is a terminal, on one line otherwise (or a table or CSV:\n"
    "--format); long output on a terminal goes through a pager\n"
    "($SPRIG_PAGER, $PAGER or less -FRX; SPRIG_PAGER= turns it off).\n"
    "Errors go to stderr as 'sprig: <kind>: <detail>'.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  other error\n"
    "  2  usage error: bad command line, or a malformed argument\n"
    "  3  not found: no such storage, database or document\n"
    "  4  conflict: wrong revision, or the thing exists already\n"
    "  5  busy: another process has the storage open\n"
    "  6  access: permission denied (not logged in, not granted, a\n"
    "     read-only storage), or the vault key or password is wrong or\n"
    "     missing (or the key file is readable by others)\n";

static const cli_cmd top_cmds[] = {
    {"schema", cli_cmd_schema},
    {"db", cli_cmd_db},
    {"doc", cli_cmd_doc},
    {"demo", cli_cmd_demo},
    {"kv", cli_cmd_kv},
    {"serve", cli_cmd_serve},
    {"view", cli_cmd_view},
    {"certificate", cli_cmd_cert},
    {"file", cli_cmd_file},
    {"vault", cli_cmd_vault},
    {"check", cli_cmd_check},
    {"backup", cli_cmd_backup},
    {"restore", cli_cmd_restore},
    {"export", cli_cmd_export},
    {"import", cli_cmd_import},
    {"compact", cli_cmd_compact},
    {"pubsub", cli_cmd_pubsub},
    {"log", cli_cmd_log},
    {"shell", cli_cmd_shell},
    {"admin", cli_cmd_admin},
    {"apis", cli_cmd_apis},
    {"call", cli_cmd_call},
    {"clients", cli_cmd_clients}, /* issue 15 */
    {"watch", cli_cmd_watch},     /* issue 15 */
    {"cluster", cli_cmd_cluster}, /* issue 18 */
    {NULL, NULL},
};

int
cli_run_command(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, top_cmds, argc, argv, top_usage);
}

const cli_cmd *
cli_top_commands(void)
{
    return top_cmds;
}

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

/* The global options, accepted before and after the command.  To add
 * one: a field in struct cli (cli.h), a row in this table (a value option
 * points at a `const char *` field, a flag at a `bool`), a line in
 * top_usage, and a check where it applies (cli_open() for the storage's
 * options: refuse it where it cannot apply, as --ca without wss://).
 * --version must stay the last row: it is dropped after the command. */
static int
global_options(cli *c, bool *version, cli_opt *out, int n)
{
    const cli_opt rows[] = {
        {"--path", &c->path, NULL},
        {"--db", &c->dbname, NULL},
        {"--url", &c->url, NULL},
        {"--ca", &c->ca_file, NULL},
        {"--schema", &c->schema_file, NULL},
        {"--vault-key", &c->vault_key, NULL},
        {"--ask-passphrase", NULL, &c->ask_passphrase},
        {"--encrypt", NULL, &c->encrypt},
        {"--compress", NULL, &c->compress},
        {"--read-only", NULL, &c->read_only},
        {"--format", &c->format, NULL},
        {"--user", &c->user, NULL},
        {"--password-env", &c->password_env, NULL},
        {"--token-file", &c->token_file, NULL},
        {"--no-follow", NULL, &c->no_follow},
        {"--linearizable", NULL, &c->linearizable},
        {"--version", NULL, version},
    };
    int k = (int)(sizeof rows / sizeof rows[0]);
    for (int i = 0; i < k && i < n - 1; i++) {
        out[i] = rows[i];
    }
    out[k < n ? k : n - 1] = (cli_opt){NULL, NULL, NULL};
    return k;
}

int
main(int argc, char **argv)
{
    cli c = {.prog = argc > 0 ? argv[0] : "sprig",
             .path = cli_default_path,
             .dbname = "default"};
    bool version = false;
    cli_opt globals[32];
    int n_globals = global_options(&c, &version, globals, 32);
    int i;
    cli_output_init(&c.format);
    int rc = parse_globals(globals, &version, argc, argv, &i);
    if (rc == CLI_CONTINUE) {
        globals[n_globals - 1].name = NULL; /* --version: before only */
        cli_set_globals(globals);
        if (i == argc && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
            rc = cli_cmd_shell(&c, 1, (char *[]){"shell", NULL});
        } else {
            rc = cli_dispatch(&c, top_cmds, argc - i, argv + i, top_usage);
        }
    }
    cli_close(&c);
    return rc;
}
