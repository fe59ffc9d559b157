/*
 * fuzz_kv_record.c -- libFuzzer harness over stored entries of tables
 * "kv"* (FX_DB): each input corrupts one entry of a real storage
 * (stored.h gives the input layout), then everything is read back and
 * checked.  Checks: never a crash, a sanitizer report or a leak; every
 * read succeeds or fails with an error a corrupt file may give
 * (SPRIG_ECORRUPT, SPRIG_EAUTH, SPRIG_ENOTFOUND); the integrity check
 * always runs to its end.
 */
#include "stored.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tables[] = {"kv", NULL};
    fx_run(FX_DB, tables, data, size);
    return 0;
}
