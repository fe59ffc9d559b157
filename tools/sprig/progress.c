/*
 * progress.c -- the progress reporter of progress.h: counts items and
 * bytes, and reports them with the mean rate and the time left, as a bar
 * redrawn in place on a terminal, as plain lines elsewhere, or not at all.
 * Uses the C library and POSIX only, so any tool of tools/ can take it.
 */
#include "progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double
monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
cli_progress_opts_init(cli_progress_opts *o)
{
    memset(o, 0, sizeof *o);
    o->label = "progress";
    o->unit = "items";
    o->mode = CLI_PROGRESS_AUTO;
}

/* The terminal's width: $COLUMNS, the tty's, else 80. */
static int
term_width(FILE *out)
{
    const char *env = getenv("COLUMNS");
    int w = env ? atoi(env) : 0;
    struct winsize ws;
    if (w <= 0 && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0) {
        w = ws.ws_col;
    }
    return w > 20 ? w : 80;
}

void
cli_progress_start(cli_progress *p, const cli_progress_opts *o)
{
    memset(p, 0, sizeof *p);
    p->o = *o;
    p->o.label = o->label ? o->label : "progress";
    p->o.unit = o->unit ? o->unit : "items";
    p->o.out = o->out ? o->out : stderr;
    p->o.now = o->now ? o->now : monotonic_now;
    if (o->quiet) {
        p->o.mode = CLI_PROGRESS_QUIET;
    } else if (o->mode == CLI_PROGRESS_AUTO) {
        p->o.mode =
            isatty(fileno(p->o.out)) ? CLI_PROGRESS_BAR : CLI_PROGRESS_LINES;
    }
    if (p->o.interval <= 0) {
        p->o.interval = p->o.mode == CLI_PROGRESS_BAR ? 0.1 : 2.0;
    }
    if (p->o.mode == CLI_PROGRESS_BAR && p->o.width <= 0) {
        p->o.width = term_width(p->o.out);
    }
    p->started = p->o.now();
    p->last = p->started;
}

void
cli_progress_set_total(cli_progress *p, uint64_t items, uint64_t bytes)
{
    p->o.total_items = items;
    p->o.total_bytes = bytes;
}

/* ---- formatting -------------------------------------------------------- */

/* Append to buf[*len..n) like snprintf, never past the end. */
static void put(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
put(char *buf, size_t n, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= n) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, n - *len, fmt, ap);
    va_end(ap);
    if (k > 0) {
        *len += (size_t)k < n - *len ? (size_t)k : n - *len - 1;
    }
}

/* Bytes as "512 B", "12.3 kB", "4.5 MB", "1.2 GB" (powers of 1000). */
static void
put_bytes(char *buf, size_t n, size_t *len, double b)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) {
        b /= 1000;
        u++;
    }
    put(buf, n, len, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
}

/* Seconds as "m:ss" or "h:mm:ss". */
static void
put_time(char *buf, size_t n, size_t *len, double s)
{
    unsigned long t = s > 0 && s < 1e9 ? (unsigned long)(s + 0.5) : 0;
    if (t >= 3600) {
        put(buf, n, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    } else {
        put(buf, n, len, "%lu:%02lu", t / 60, t % 60);
    }
}

/* The fraction done, or -1 when no total is known. */
static double
fraction(const cli_progress *p)
{
    double f = -1;
    if (p->o.total_bytes) {
        f = (double)p->bytes / (double)p->o.total_bytes;
    } else if (p->o.total_items) {
        f = (double)p->items / (double)p->o.total_items;
    }
    return f > 1 ? 1 : f;
}

/* "45000/100000 docs (45%), 12.3/27.0 MB" */
static void
put_counts(const cli_progress *p, char *buf, size_t n, size_t *len)
{
    put(buf, n, len, "%llu", (unsigned long long)p->items);
    if (p->o.total_items) {
        put(buf, n, len, "/%llu", (unsigned long long)p->o.total_items);
    }
    put(buf, n, len, " %s", p->o.unit);
    double f = fraction(p);
    if (f >= 0 && p->o.mode != CLI_PROGRESS_BAR && !p->finished) {
        put(buf, n, len, " (%d%%)", (int)(f * 100));
    }
    if (p->bytes || p->o.total_bytes) {
        put(buf, n, len, ", ");
        put_bytes(buf, n, len, (double)p->bytes);
        if (p->o.total_bytes) {
            put(buf, n, len, " of ");
            put_bytes(buf, n, len, (double)p->o.total_bytes);
        }
    }
}

/* ", 8120 docs/s, 2.1 MB/s, 0:07 left" */
static void
put_rates(const cli_progress *p, double elapsed, char *buf, size_t n,
          size_t *len)
{
    if (elapsed <= 0) {
        return;
    }
    put(buf, n, len, ", %.0f %s/s", (double)p->items / elapsed, p->o.unit);
    if (p->bytes) {
        put(buf, n, len, ", ");
        put_bytes(buf, n, len, (double)p->bytes / elapsed);
        put(buf, n, len, "/s");
    }
    double f = fraction(p);
    if (!p->finished && f > 0 && f < 1) {
        put(buf, n, len, ", ");
        put_time(buf, n, len, elapsed * (1 - f) / f);
        put(buf, n, len, " left");
    }
}

void
cli_progress_format(const cli_progress *p, char *buf, size_t n)
{
    size_t len = 0;
    double elapsed = p->last - p->started;
    if (n == 0) {
        return;
    }
    buf[0] = 0;
    put(buf, n, &len, "%s: ", p->o.label);
    put_counts(p, buf, n, &len);
    if (p->finished) {
        put(buf, n, &len, " in ");
        put_time(buf, n, &len, elapsed);
    }
    put_rates(p, elapsed, buf, n, &len);
}

/* ---- drawing ----------------------------------------------------------- */

/* "label [#####.....]  45% " then the report without its label. */
static void
draw_bar(cli_progress *p)
{
    char text[512], bar[512];
    cli_progress_format(p, text, sizeof text);
    const char *rest = text + strlen(p->o.label) + 2;
    double f = fraction(p);
    int cols = p->o.width - 1; /* never touch the last column */
    int room = cols - (int)strlen(p->o.label) - (int)strlen(rest) - 10;
    int w = room > 40 ? 40 : room;
    if (f < 0 || w < 10) {
        fprintf(p->o.out, "\r%.*s\033[K", cols, text);
    } else {
        int full = (int)(f * w);
        memset(bar, '#', (size_t)full);
        memset(bar + full, '.', (size_t)(w - full));
        bar[w] = 0;
        fprintf(p->o.out, "\r%s [%s] %3d%% %s\033[K", p->o.label, bar,
                (int)(f * 100), rest);
    }
    fflush(p->o.out);
    p->drawn = true;
}

static void
report(cli_progress *p)
{
    char text[512];
    switch (p->o.mode) {
    case CLI_PROGRESS_BAR: draw_bar(p); break;
    case CLI_PROGRESS_LINES:
        cli_progress_format(p, text, sizeof text);
        fprintf(p->o.out, "%s\n", text);
        fflush(p->o.out);
        break;
    default: break;
    }
}

void
cli_progress_add(cli_progress *p, uint64_t items, uint64_t bytes)
{
    p->items += items;
    p->bytes += bytes;
    if (p->o.mode == CLI_PROGRESS_QUIET || p->finished) {
        return;
    }
    double now = p->o.now();
    if (now - p->last >= p->o.interval) {
        p->last = now;
        report(p);
    }
}

void
cli_progress_clear(cli_progress *p)
{
    if (p->o.mode == CLI_PROGRESS_BAR && p->drawn) {
        fputs("\r\033[K", p->o.out);
        fflush(p->o.out);
        p->drawn = false;
    }
}

void
cli_progress_finish(cli_progress *p)
{
    if (p->finished) {
        return;
    }
    p->last = p->o.now();
    p->finished = true;
    if (p->o.mode == CLI_PROGRESS_QUIET) {
        return;
    }
    if (p->o.mode == CLI_PROGRESS_BAR) {
        char text[512];
        cli_progress_format(p, text, sizeof text);
        fprintf(p->o.out, "\r%s\033[K\n", text);
        fflush(p->o.out);
        p->drawn = false;
        return;
    }
    report(p);
}
