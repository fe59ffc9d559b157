/*
 * results.c -- what the local benchmark reports: median and spread of each
 * series of rates, Sprig's ratios against its peers (ratio of the medians,
 * with the spread of the per-run ratios, since each run measures every
 * engine back to back), a table on stdout and the JSON file that
 * bench/report.py turns into docs/benchmarks.md.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void
bench_push(bench_series *s, double ops, double secs, double cpu_secs)
{
    if (s->n < BENCH_MAX_RUNS && secs > 0 && ops > 0) {
        s->v[s->n] = ops / secs;
        s->cpu[s->n] = cpu_secs * 1e6 / ops;
        s->n++;
    }
}

static double
median_of(const double *values, unsigned n)
{
    double v[BENCH_MAX_RUNS];
    if (n == 0) {
        return 0;
    }
    memcpy(v, values, n * sizeof v[0]);
    qsort(v, n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double
bench_median(const bench_series *s)
{
    return median_of(s->v, s->n);
}

double
bench_cpu_median(const bench_series *s)
{
    return median_of(s->cpu, s->n);
}

double
bench_min(const bench_series *s)
{
    double m = s->n ? s->v[0] : 0;
    for (unsigned i = 1; i < s->n; i++) {
        m = s->v[i] < m ? s->v[i] : m;
    }
    return m;
}

double
bench_max(const bench_series *s)
{
    double m = s->n ? s->v[0] : 0;
    for (unsigned i = 1; i < s->n; i++) {
        m = s->v[i] > m ? s->v[i] : m;
    }
    return m;
}

double
bench_ratio_of(const bench_result *r, const bench_ratio *q)
{
    double peer = bench_median(&r->s[q->peer]);
    return peer > 0 ? bench_median(&r->s[0]) / peer : 0;
}

/* The per-run ratios of Sprig against series `peer`. */
static bench_series
run_ratios(const bench_result *r, unsigned peer)
{
    bench_series q = {.name = "ratio"};
    const bench_series *a = &r->s[0], *b = &r->s[peer];
    for (unsigned i = 0; i < a->n && i < b->n; i++) {
        q.v[q.n++] = b->v[i] > 0 ? a->v[i] / b->v[i] : 0;
    }
    return q;
}

void
bench_add_series(bench_result *r, unsigned idx, const char *name)
{
    r->s[idx].name = name;
    if (r->n_series <= idx) {
        r->n_series = idx + 1;
    }
}

void
bench_add_ratio(bench_result *r, unsigned peer, double target)
{
    r->r[r->n_ratios++] = (bench_ratio){peer, target};
}

void
bench_extra_add(bench_result *r, const char *key, double v)
{
    if (r->n_extra < BENCH_MAX_EXTRA) {
        r->x[r->n_extra++] = (bench_extra){key, v};
    }
}

void
bench_result_print(const bench_result *r)
{
    printf("\n== %s (%s; %s)%s\n", r->name, r->workload, r->durability,
           r->failed ? "  ** FAILED **" : "");
    for (unsigned i = 0; i < r->n_series; i++) {
        const bench_series *s = &r->s[i];
        printf("  %-13s %12.0f %s  (min %.0f, max %.0f, %u runs; "
               "cpu %.2f us/op)\n",
               s->name, bench_median(s), r->unit, bench_min(s), bench_max(s),
               s->n, bench_cpu_median(s));
    }
    for (unsigned i = 0; i < r->n_ratios; i++) {
        const bench_ratio *q = &r->r[i];
        bench_series per = run_ratios(r, q->peer);
        double v = bench_ratio_of(r, q);
        printf("  sprig / %-13s %6.2fx  (runs %.2f-%.2f)", r->s[q->peer].name,
               v, bench_min(&per), bench_max(&per));
        if (q->target > 0) {
            printf("  target >= %.1fx: %s", q->target,
                   v >= q->target ? "met" : "MISSED");
        }
        printf("\n");
    }
    for (unsigned i = 0; i < r->n_extra; i++) {
        printf("  %s: %g\n", r->x[i].key, r->x[i].v);
    }
}

/* ---- JSON ---------------------------------------------------------------- */

static void
json_series(FILE *f, const bench_series *s)
{
    fprintf(f,
            "\"%s\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f, "
            "\"cpu_us_per_op\": %.3f, \"runs\": [",
            s->name, bench_median(s), bench_min(s), bench_max(s),
            bench_cpu_median(s));
    for (unsigned i = 0; i < s->n; i++) {
        fprintf(f, "%s%.1f", i ? ", " : "", s->v[i]);
    }
    fprintf(f, "]}");
}

static void
json_ratio(FILE *f, const bench_result *r, const bench_ratio *q)
{
    bench_series per = run_ratios(r, q->peer);
    double v = bench_ratio_of(r, q);
    fprintf(f,
            "{\"vs\": \"%s\", \"ratio\": %.3f, \"min\": %.3f, "
            "\"max\": %.3f",
            r->s[q->peer].name, v, bench_min(&per), bench_max(&per));
    if (q->target > 0) {
        fprintf(f, ", \"target\": %.2f, \"met\": %s", q->target,
                v >= q->target ? "true" : "false");
    } else {
        fprintf(f, ", \"target\": null, \"met\": null");
    }
    fprintf(f, "}");
}

static void
json_result(FILE *f, const bench_result *r)
{
    fprintf(f,
            "    {\"name\": \"%s\", \"workload\": \"%s\", "
            "\"durability\": \"%s\", \"unit\": \"%s\", \"failed\": %s,\n",
            r->name, r->workload, r->durability, r->unit,
            r->failed ? "true" : "false");
    if (r->group) {
        fprintf(f, "     \"group\": \"%s\",\n", r->group);
    }
    fprintf(f, "     \"series\": {");
    for (unsigned i = 0; i < r->n_series; i++) {
        fprintf(f, "%s", i ? ",\n                " : "");
        json_series(f, &r->s[i]);
    }
    fprintf(f, "},\n     \"ratios\": [");
    for (unsigned i = 0; i < r->n_ratios; i++) {
        fprintf(f, "%s", i ? ",\n                " : "");
        json_ratio(f, r, &r->r[i]);
    }
    fprintf(f, "],\n     \"extra\": {");
    for (unsigned i = 0; i < r->n_extra; i++) {
        fprintf(f, "%s\"%s\": %.6g", i ? ", " : "", r->x[i].key, r->x[i].v);
    }
    fprintf(f, "}}");
}

int
bench_json_write(const char *path, const bench_machine *m,
                 const bench_result *res, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        return bench_fail("json", "cannot write %s", path);
    }
    fprintf(f,
            "{\n  \"bench\": \"local\",\n  \"date\": \"%s\",\n"
            "  \"versions\": \"%s\",\n"
            "  \"machine\": {\"nproc\": %ld, \"kernel\": \"%s\", "
            "\"cpu\": \"%s\", \"fsyncs_per_s\": %.0f},\n"
            "  \"seed\": %llu,\n  \"quick\": %s,\n  \"seconds\": %.1f,\n"
            "  \"workloads\": [\n",
            m->date, m->versions, m->nproc, m->kernel, m->cpu, m->fsyncs_per_s,
            (unsigned long long)m->seed, m->quick ? "true" : "false",
            m->seconds);
    for (size_t i = 0; i < n; i++) {
        json_result(f, &res[i]);
        fprintf(f, "%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0 ? 0 : bench_fail("json", "cannot write %s", path);
}
