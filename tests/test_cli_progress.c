/*
 * test_cli_progress.c -- the progress reporter of the command-line tools
 * (tools/sprig/progress.c): with a clock the test drives, the plain lines
 * come every `interval` with the right counts, rates and time left; the bar
 * is redrawn in place with as many '#' as the fraction done; quiet prints
 * nothing; AUTO picks the bar on a pseudo-terminal and lines on a pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/sprig/progress.c"

static double fake_time;

static double
fake_now(void)
{
    return fake_time;
}

/* A reporter writing to a memory stream. */
typedef struct fixture {
    char *text;
    size_t len;
    FILE *out;
    cli_progress p;
} fixture;

static void
start(fixture *f, cli_progress_mode mode, uint64_t items, uint64_t bytes)
{
    cli_progress_opts o;
    cli_progress_opts_init(&o);
    f->out = open_memstream(&f->text, &f->len);
    assert_non_null(f->out);
    o.label = "import";
    o.unit = "docs";
    o.out = f->out;
    o.mode = mode;
    o.now = fake_now;
    o.interval = 1.0;
    o.width = 120;
    o.total_items = items;
    o.total_bytes = bytes;
    fake_time = 100;
    cli_progress_start(&f->p, &o);
}

static char *
output(fixture *f)
{
    fflush(f->out);
    return f->text;
}

static void
stop(fixture *f)
{
    fclose(f->out);
    free(f->text);
}

static int
count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p++) {
        n++;
    }
    return n;
}

static void
test_lines_at_interval_with_rate_and_eta(void **state)
{
    (void)state;
    fixture f;
    start(&f, CLI_PROGRESS_LINES, 1000, 0);
    for (int i = 0; i < 250; i++) { /* 250 docs in 0.5 s: no report yet */
        fake_time = 100 + (i + 1) * 0.002;
        cli_progress_add(&f.p, 1, 100);
    }
    assert_string_equal(output(&f), "");
    for (int i = 250; i < 500; i++) { /* 500 docs in 1.0 s: one report */
        fake_time = 100 + (i + 1) * 0.002;
        cli_progress_add(&f.p, 1, 100);
    }
    /* 1.0 s, 500 of 1000: 500 docs/s, 50 kB/s, one more second. */
    assert_string_equal(output(&f), "import: 500/1000 docs (50%), 50.0 kB, "
                                    "500 docs/s, 50.0 kB/s, 0:01 left\n");
    fake_time += 1.0;
    cli_progress_add(&f.p, 500, 50000);
    cli_progress_finish(&f.p);
    cli_progress_finish(&f.p); /* once */
    assert_int_equal(count(output(&f), "\n"), 3);
    assert_non_null(strstr(output(&f), "import: 1000/1000 docs, "
                                       "100.0 kB in 0:02, 500 docs/s, "
                                       "50.0 kB/s\n"));
    stop(&f);
}

static void
test_bar_redraws_in_place(void **state)
{
    (void)state;
    fixture f;
    start(&f, CLI_PROGRESS_BAR, 0, 4000); /* total known in bytes */
    fake_time += 2;
    cli_progress_add(&f.p, 10, 1000); /* a quarter */
    char *s = output(&f);
    assert_int_equal(s[0], '\r');
    assert_non_null(strstr(s, "\033[K"));
    assert_null(strchr(s, '\n'));
    /* a 40-column bar, a quarter full: 10 '#' then 30 '.' */
    assert_non_null(strstr(s, "[##########......"));
    assert_int_equal(count(s, "#"), 10);
    assert_non_null(strstr(s, " 25% "));
    assert_non_null(strstr(s, "0:06 left"));
    size_t drawn = strlen(s);
    cli_progress_clear(&f.p);
    assert_string_equal(output(&f) + drawn, "\r\033[K");
    fake_time += 2;
    cli_progress_add(&f.p, 30, 3000);
    cli_progress_finish(&f.p);
    s = output(&f);
    assert_int_equal(count(s, "\n"), 1); /* only the finished line ends */
    assert_non_null(strstr(s, "\rimport: 40 docs, 4.0 kB of 4.0 kB in 0:04"));
    stop(&f);
}

static void
test_quiet_prints_nothing(void **state)
{
    (void)state;
    fixture f;
    start(&f, CLI_PROGRESS_QUIET, 10, 0);
    for (int i = 0; i < 10; i++) {
        fake_time += 5;
        cli_progress_add(&f.p, 1, 1);
    }
    cli_progress_finish(&f.p);
    assert_string_equal(output(&f), "");
    char buf[256];
    cli_progress_format(&f.p, buf, sizeof buf); /* still counted */
    assert_non_null(strstr(buf, "10/10 docs"));
    stop(&f);
}

/* AUTO: a bar on a pseudo-terminal, lines on a pipe. */
static void
test_auto_picks_bar_on_a_terminal(void **state)
{
    (void)state;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    FILE *tty = fopen(ptsname(master), "w");
    assert_non_null(tty);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    FILE *pipe_out = fdopen(fds[1], "w");
    cli_progress_opts o;
    cli_progress_opts_init(&o);
    cli_progress a, b;
    o.out = tty;
    cli_progress_start(&a, &o);
    o.out = pipe_out;
    cli_progress_start(&b, &o);
    assert_int_equal(a.o.mode, CLI_PROGRESS_BAR);
    assert_int_equal(b.o.mode, CLI_PROGRESS_LINES);
    o.quiet = true;
    o.out = tty;
    cli_progress_start(&a, &o);
    assert_int_equal(a.o.mode, CLI_PROGRESS_QUIET);
    fclose(tty);
    fclose(pipe_out);
    close(fds[0]);
    close(master);
}

static void
test_format_units(void **state)
{
    (void)state;
    fixture f;
    start(&f, CLI_PROGRESS_LINES, 0, 0);
    fake_time += 3725; /* 1:02:05 */
    cli_progress_add(&f.p, 3, 2500000000ull);
    cli_progress_finish(&f.p);
    assert_string_equal(output(&f),
                        "import: 3 docs, 2.5 GB, 0 docs/s, 671.1 kB/s\n"
                        "import: 3 docs, 2.5 GB in 1:02:05, 0 docs/s, "
                        "671.1 kB/s\n");
    stop(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_at_interval_with_rate_and_eta),
        cmocka_unit_test(test_bar_redraws_in_place),
        cmocka_unit_test(test_quiet_prints_nothing),
        cmocka_unit_test(test_auto_picks_bar_on_a_terminal),
        cmocka_unit_test(test_format_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
