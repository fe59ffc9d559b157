/*
 * cmd_check.c -- `sprig check`: verify a local storage with
 * sprig_storage_check() (views against collections, the log against the
 * data, the key-value expiry index, LMDB's own consistency) and print what
 * it found, one finding a line on stdout, then a summary line.  Exit 0
 * when nothing was found, 1 when something was (or the check could not
 * run), so scripts and the crash loops can use it.
 */
#include "cli.h"

#include <stdio.h>

static const char check_usage[] =
    "usage: sprig [--path DIR] [--read-only] check\n"
    "\n"
    "Verify the storage at --path: every view agrees with its collection,\n"
    "every transaction-log record with the data, the key-value expiry\n"
    "index with its values, no orphan entries, LMDB's own consistency.\n"
    "Prints each finding, then a summary; exit 1 when anything is wrong.\n"
    "With --read-only nothing is written (not even a replay of the log).\n";

int
cli_cmd_check(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, check_usage, 0, 0, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_buf report = {0};
    uint64_t findings = 0;
    int src = sprig_storage_check(c->st, &report, &findings);
    if (src) {
        sprig_buf_clear(&report);
        return cli_fail(src);
    }
    if (report.len) {
        fwrite(report.data, 1, report.len, stdout);
    }
    printf("%s: %llu finding%s\n", cli_where(c), (unsigned long long)findings,
           findings == 1 ? "" : "s");
    sprig_buf_clear(&report);
    return findings ? 1 : 0;
}
