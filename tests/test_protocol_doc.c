/*
 * test_protocol_doc.c -- docs/protocol.md describes every row of a
 * server's registry (the built-in rows of src/proto/api_table.c, as a
 * fresh server holds them): each API name appears in the operations table
 * with its permission action and every request and response field, and in
 * the resource table with its access (read or write), where the server
 * runs it, and the form of its resource name as the row's spec makes it.
 * A row added without its documentation fails here, so a client written
 * from the page alone keeps working.
 */
#include "proto/api.h"
#include "server/server_int.h"
#include "testutil.h"

static char *
read_doc(void)
{
    FILE *f = fopen(SPRIG_SOURCE_DIR "/docs/protocol.md", "r");
    assert_non_null(f);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* The first table line of `api` in `doc` ("| `name` | ..."). */
static const char *
row_of(const char *doc, const char *api, char *line, size_t n)
{
    char needle[96];
    snprintf(needle, sizeof needle, "| `%s` |", api);
    const char *p = strstr(doc, needle);
    if (!p) {
        return NULL;
    }
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    len = len < n - 1 ? len : n - 1;
    memcpy(line, p, len);
    line[len] = 0;
    return line;
}

static void
check_fields(const char *api, const char *line, const sprig__field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "`%s`", f[i].name);
        if (!strstr(line, name)) {
            print_message("docs/protocol.md: %s lacks field %s\n", api, name);
            fail();
        }
    }
}

/* The documented form of a row's resource name: segments joined by '.',
 * variable parts as {field}. */
static void
resource_form(const sprig__api *a, char *out, size_t n)
{
    size_t len = 0, part;
    out[0] = 0;
    for (size_t i = 0; i < sprig__res_segments(a->resource.kind); i++) {
        const char *lit = sprig__res_segment(a->resource.kind, i, &part);
        len +=
            (size_t)snprintf(out + len, n - len, lit ? "%s%s" : "%s{%s}",
                             i ? "." : "", lit ? lit : a->resource.parts[part]);
        assert_true(len < n);
    }
}

static const char *
runs_text(sprig__where w)
{
    switch (w) {
    case SPRIG__RUN_LOOP: return "loop";
    case SPRIG__RUN_CACHED_READ: return "loop (cached handle), else worker";
    case SPRIG__RUN_WORKER: return "worker";
    case SPRIG__RUN_SUBMIT: return "submitted";
    }
    return "?";
}

/* The resource table's line for `a` says its access, place and form. */
static void
check_resource_row(const char *doc, const sprig__api *a)
{
    const char *table = strstr(doc, "<!-- resource-table");
    assert_non_null(table);
    char line[1024], want[400], form[256];
    if (!row_of(table, a->name, line, sizeof line)) {
        fail_msg("docs/protocol.md: no resource-table row for %s", a->name);
    }
    resource_form(a, form, sizeof form);
    snprintf(want, sizeof want, "| `%s` | %s | %s | `%s` |", a->name,
             a->access == SPRIG__WRITE ? "write" : "read", runs_text(a->where),
             form);
    if (strcmp(line, want) != 0) {
        fail_msg("docs/protocol.md resource row\n  is   %s\n  want %s", line,
                 want);
    }
}

static void
test_every_row_documented(void **state)
{
    (void)state;
    const char *doc = read_doc();
    char line[2048];
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.memory_only = true;
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.open_access = true; /* tests of other parts: no authentication */
    o.ws_listen = NULL;   /* the registry only */
    sprig_server *srv;
    SPRIG_OK_(sprig_server_new(&so, &o, &srv));
    size_t n = sprig__registry_count(&srv->reg);
    assert_int_equal(n, sprig__api_count);
    for (size_t i = 0; i < n; i++) {
        const sprig__api *a = &sprig__registry_at(&srv->reg, i)->api;
        if (!row_of(doc, a->name, line, sizeof line)) {
            print_message("docs/protocol.md does not document %s\n", a->name);
            fail();
        }
        char action[80];
        snprintf(action, sizeof action, "| %s |", a->action);
        if (!strstr(line, action)) {
            print_message("%s: action %s is not documented\n", a->name,
                          a->action);
            fail();
        }
        check_fields(a->name, line, a->req, a->n_req);
        check_fields(a->name, line, a->resp, a->n_resp);
        check_resource_row(doc, a);
    }
    sprig_server_free(srv);
    assert_true(n >= 27);
    assert_non_null(row_of(doc, SPRIG__PUSH_MESSAGE, line, sizeof line));
    check_fields(SPRIG__PUSH_MESSAGE, line, sprig__message_push_fields,
                 sprig__message_push_n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
