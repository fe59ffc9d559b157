/*
 * progress.h -- a progress reporter for the command-line tools (tools/):
 * counts items and bytes as a long job (an import, a backup, a file upload)
 * moves along, and reports them with the rate and the time left.  On a
 * terminal it redraws one bar in place; otherwise (a pipe, a log file) it
 * prints a plain line now and then; quiet (--json, scripts) it prints
 * nothing.  It depends on the C library only (no cli.h, no sprig.h), so any
 * tool can take progress.c/.h as they are.
 *
 *   cli_progress p;
 *   cli_progress_opts o;
 *   cli_progress_opts_init(&o);
 *   o.label = "import"; o.unit = "docs"; o.total_bytes = file_size;
 *   o.quiet = json_output;
 *   cli_progress_start(&p, &o);
 *   for (...) cli_progress_add(&p, 1, line_len);
 *   cli_progress_finish(&p);      // the last line: totals and the rate
 *
 * One reporter belongs to one thread; nothing is allocated, so there is
 * nothing to free and no call fails.
 */
#ifndef SPRIG_TOOLS_PROGRESS_H
#define SPRIG_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* How the reporter draws. */
typedef enum cli_progress_mode {
    CLI_PROGRESS_AUTO = 0, /* a bar if `out` is a terminal, else lines */
    CLI_PROGRESS_BAR,      /* a bar redrawn in place ('\r'), ANSI erase */
    CLI_PROGRESS_LINES,    /* a plain line every `interval` seconds */
    CLI_PROGRESS_QUIET     /* nothing at all */
} cli_progress_mode;

/* What to report, set by cli_progress_opts_init() and then by the caller. */
typedef struct cli_progress_opts {
    const char *label;    /* first word of every report ("import");
                             default "progress" */
    const char *unit;     /* what the items are ("docs"); default "items" */
    uint64_t total_items; /* 0: unknown */
    uint64_t total_bytes; /* 0: unknown.  The time left comes from bytes
                             when this is known, else from items */
    FILE *out;            /* default stderr */
    cli_progress_mode mode;
    bool quiet;          /* shorthand for mode = CLI_PROGRESS_QUIET */
    double interval;     /* seconds between reports; default 0.1 for the bar,
                            2 for lines */
    int width;           /* bar: columns; default $COLUMNS, the terminal's
                            width, else 80 */
    double (*now)(void); /* clock in seconds; default CLOCK_MONOTONIC (tests
                            pass their own) */
} cli_progress_opts;

/* A reporter.  The fields are private: use the functions. */
typedef struct cli_progress {
    cli_progress_opts o;
    uint64_t items, bytes;
    double started, last;
    bool drawn; /* bar: a bar is on the screen */
    bool finished;
} cli_progress;

/* Defaults: unknown totals, stderr, AUTO. */
void cli_progress_opts_init(cli_progress_opts *o);

/* Start reporting with a copy of `o` (its strings are borrowed: they must
 * outlive `p`).  Draws nothing yet. */
void cli_progress_start(cli_progress *p, const cli_progress_opts *o);

/* Learn the totals later (e.g. after counting the input); 0 keeps them
 * unknown. */
void cli_progress_set_total(cli_progress *p, uint64_t items, uint64_t bytes);

/* Count `items` and `bytes` more done; reports when `interval` has passed
 * since the last report. */
void cli_progress_add(cli_progress *p, uint64_t items, uint64_t bytes);

/* Erase the bar (a terminal) so a message can be printed on `out` or on
 * the terminal; the next cli_progress_add() draws it again. */
void cli_progress_clear(cli_progress *p);

/* The end: a last report with the totals, the elapsed time and the mean
 * rate (the bar is drawn complete and the line ended).  Prints nothing
 * when quiet.  Calling it twice prints once. */
void cli_progress_finish(cli_progress *p);

/* Format the current report into `buf` (what a LINES report prints, with
 * no newline); for tests and for callers that print it themselves. */
void cli_progress_format(const cli_progress *p, char *buf, size_t n);

#endif /* SPRIG_TOOLS_PROGRESS_H */
