/*
 * test_protocol_doc.c -- docs/protocol.md describes every row of the API
 * table (src/proto/api_table.c): each API name appears in the operations
 * table with its permission action and every request and response field.
 * A row added to the table without its documentation fails here, so a
 * client written from the page alone keeps working.
 */
#include "proto/api.h"
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

/* The table line of `api` ("| `name` | action | request | response |"). */
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

static void
test_every_row_documented(void **state)
{
    (void)state;
    const char *doc = read_doc();
    char line[2048];
    for (size_t i = 0; i < sprig__api_count; i++) {
        const sprig__api *a = sprig__api_table[i];
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
    }
    assert_true(sprig__api_count >= 27);
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
