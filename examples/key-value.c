/*
 * key-value.c -- Sprig's key-value store, the counterpart of BonsaiDb's
 * key-value example.  Besides its documents, every Sprig database holds a
 * small, atomic key-value store, for what you might use Redis for: caches,
 * counters, locks.  Like everything in Sprig it works the same whether the
 * database is local or (later) on a server.
 *
 * It sets a key, replaces it only if it exists while getting the old value
 * back, reads it, shows namespaces, takes a lock with "set only if vacant"
 * and an expiration, counts with atomic increments, and lists keys by
 * prefix.  Everything it uses is in <sprig/sprig.h>.
 *
 * Build (outside the Sprig tree, after `make install`):
 *     cc key-value.c $(pkg-config --cflags --libs sprig) -o key-value
 * Run:
 *     ./key-value [DIRECTORY]        (default: key-value-store.sprig)
 */
#include <sprig/sprig.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* The key-value store needs no collections: an empty schema will do. */
static const sprig_schema_def schema = {.name = "key-value"};

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != 0) {                                                        \
            fprintf(stderr, "key-value: %s: %s: %s\n", #call,                  \
                    sprig_strerror(rc_), sprig_errmsg());                      \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static const char *
status_name(sprig_kv_status st)
{
    switch (st) {
    case SPRIG_KV_INSERTED: return "Inserted";
    case SPRIG_KV_UPDATED: return "Updated";
    case SPRIG_KV_DELETED: return "Deleted";
    case SPRIG_KV_NOT_CHANGED: return "NotChanged";
    }
    return "?";
}

int
main(int argc, char **argv)
{
    sprig_db *db;
    CHECK(sprig_db_open_local(argc > 1 ? argv[1] : "key-value-store.sprig",
                              &schema, &db));

    /* Values are bytes or numbers (i64, u64, f64).  A NULL namespace is
     * the default one. */
    sprig_value one = sprig_value_of_u64(1), two = sprig_value_of_u64(2);
    CHECK(sprig_kv_set(db, NULL, "mykey", &one, NULL, NULL, NULL));

    /* Options: replace only if the key exists, and return what it held.
     * Returned values are ours until sprig_value_clear(). */
    sprig_kv_set_opts only_if_exists = {.check = SPRIG_KV_ONLY_IF_PRESENT};
    sprig_value old;
    sprig_kv_status st;
    CHECK(sprig_kv_set(db, NULL, "mykey", &two, &only_if_exists, &st, &old));
    printf("Replaced mykey (%s); it held %" PRIu64 "\n", status_name(st),
           old.num.u64);

    sprig_value v;
    CHECK(sprig_kv_get(db, NULL, "mykey", false, &v));
    printf("mykey is now %" PRIu64 "\n", v.num.u64);

    /* Namespaces keep keys apart. */
    int rc = sprig_kv_get(db, "anamespace", "mykey", false, &v);
    printf("mykey in anamespace: %s\n",
           rc == SPRIG_ENOTFOUND ? "absent" : "present?!");

    /* A set is atomic, so "set only if vacant" makes a lock; the expiration
     * frees it if its holder dies.  The value could name the holder. */
    sprig_value me = sprig_value_of_bytes(sprig_str("worker-1"));
    sprig_kv_set_opts lock = {.check = SPRIG_KV_ONLY_IF_VACANT,
                              .expire_in_ms = 100};
    CHECK(sprig_kv_set(db, NULL, "lockname", &me, &lock, &st, NULL));
    printf("First try at the lock: %s\n", status_name(st));
    CHECK(sprig_kv_set(db, NULL, "lockname", &me, &lock, &st, NULL));
    printf("Second try at the lock: %s\n", status_name(st));
    CHECK(sprig_kv_delete(db, NULL, "lockname", &st)); /* release it */
    printf("Released the lock: %s\n", status_name(st));

    /* Counters: increments are atomic, even from many threads or
     * processes' requests at once.  A missing key starts at 0. */
    sprig_value by = sprig_value_of_i64(5), count;
    CHECK(sprig_kv_delete(db, "stats", "visits", NULL)); /* a fresh start */
    for (int i = 0; i < 3; i++) {
        CHECK(sprig_kv_increment(db, "stats", "visits", &by, false, &count));
    }
    printf("visits after three increments by 5: %" PRId64 "\n", count.num.i64);

    /* Beyond BonsaiDb: list a namespace's keys by prefix, a page at a
     * time (pass the last key of a page as `after` for the next). */
    char key[32];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "page:%d", i);
        sprig_value n = sprig_value_of_i64(i * i);
        CHECK(sprig_kv_set(db, "stats", key, &n, NULL, NULL, NULL));
    }
    sprig_kv_key_list *l;
    CHECK(sprig_kv_list_keys(db, "stats", "page:", "page:1", 10, &l));
    printf("Keys after page:1:");
    for (size_t i = 0; i < sprig_kv_key_list_count(l); i++) {
        printf(" %s=%" PRId64, sprig_kv_key_list_key(l, i),
               sprig_kv_key_list_value(l, i)->num.i64);
    }
    printf("\n");
    sprig_kv_key_list_free(l);

    sprig_db_close(db);
    return 0;
}
