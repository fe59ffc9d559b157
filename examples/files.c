/*
 * files.c -- the file store (F16, include/sprig/files.h): BonsaiDb's
 * bonsaidb-files example in C.  One local database whose schema gets the
 * store's collections from sprig_files_schema_add(); a file written from
 * a buffer with JSON metadata, appended to, read at an offset, streamed
 * out, listed, moved and deleted.  The same calls work on a database
 * reached over ws:// or wss://.
 */
#include <sprig/files.h>

#include <stdio.h>
#include <string.h>

static int
fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", what, sprig_strerror(rc), sprig_errmsg());
    return 1;
}

/* A sink that counts the bytes streamed out. */
static int
count_bytes(void *udata, const void *data, size_t len)
{
    (void)data;
    *(size_t *)udata += len;
    return 0;
}

static int
run(sprig_files *fs)
{
    sprig_bytes meta = sprig_str("{\"content-type\":\"text/plain\"}");
    int rc =
        sprig_files_put(fs, "/notes/hello.txt", sprig_str("Hello, "), &meta, 0);
    rc = rc ? rc
            : sprig_files_append(fs, "/notes/hello.txt", sprig_str("World!"));
    if (rc) {
        return fail("put", rc);
    }
    sprig_buf b = {0};
    rc = sprig_files_read(fs, "/notes/hello.txt", 7, 5, &b);
    if (rc) {
        return fail("read", rc);
    }
    printf("Bytes 7..12: %.*s\n", (int)b.len, (const char *)b.data);
    sprig_file_stat st;
    rc = sprig_files_stat(fs, "/notes/hello.txt", &st, &b);
    if (rc) {
        return fail("stat", rc);
    }
    printf("Length %llu, metadata %.*s\n", (unsigned long long)st.length,
           (int)b.len, (const char *)b.data);
    sprig_buf_clear(&b);
    /* a file of many chunks, streamed back out */
    static char big[300000];
    memset(big, 'x', sizeof big);
    rc = sprig_files_put(fs, "/notes/big.bin", (sprig_bytes){big, sizeof big},
                         NULL, 0);
    size_t n = 0;
    rc = rc ? rc
            : sprig_files_read_stream(fs, "/notes/big.bin", 0, UINT64_MAX,
                                      count_bytes, &n, NULL);
    if (rc) {
        return fail("big", rc);
    }
    printf("Streamed %zu bytes\n", n);
    return 0;
}

static int
list_and_tidy(sprig_files *fs)
{
    int rc =
        sprig_files_rename(fs, "/notes/hello.txt", "/archive/hello.txt", 0);
    sprig_file_list *l;
    rc = rc ? rc : sprig_files_list(fs, "/", NULL, 0, &l);
    if (rc) {
        return fail("list", rc);
    }
    printf("In /:");
    for (size_t i = 0; i < sprig_file_list_count(l); i++) {
        printf(" %s", sprig_file_list_name(l, i));
    }
    printf("\n");
    sprig_file_list_free(l);
    rc = sprig_files_delete(fs, "/archive/hello.txt");
    rc = rc ? rc : sprig_files_delete(fs, "/notes/big.bin");
    if (rc) {
        return fail("delete", rc);
    }
    rc = sprig_files_list(fs, "/", NULL, 0, &l);
    if (rc) {
        return fail("list", rc);
    }
    printf("Deleted; / now has %zu entries\n", sprig_file_list_count(l));
    sprig_file_list_free(l);
    return 0;
}

int
main(void)
{
    sprig_schema_def *schema;
    sprig_db *db;
    sprig_files *fs;
    int rc = sprig_files_schema_add(NULL, "files-example", NULL, &schema);
    rc = rc ? rc : sprig_db_open_local("files-example-data", schema, &db);
    if (rc) {
        return fail("open", rc);
    }
    rc = sprig_files_open(db, NULL, &fs);
    if (rc) {
        return fail("files", rc);
    }
    int status = run(fs);
    status = status ? status : list_and_tidy(fs);
    sprig_files_close(fs);
    sprig_db_close(db);
    sprig_files_schema_free(schema);
    return status;
}
