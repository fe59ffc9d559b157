#!/bin/sh
# valgrind.sh BUILD [TEST...] -- run unit tests of a normal build (not an
# ASan one: valgrind and ASan exclude each other) under valgrind memcheck
# (make valgrind; ctest valgrind_short runs two).  Without TEST arguments:
# every unit test that neither opens sockets nor depends on timing (the
# list below).  A test fails when memcheck finds an error -- an invalid
# read or write, a use of uninitialised memory in a branch or a system
# call, a bad free, a definite leak -- (--error-exitcode) or when the test
# itself fails.  Suppressions: tests/valgrind.supp, each with its reason.
# Prints one line per test with its time; exit status 0 when all passed,
# 77 when valgrind is not installed.
set -u

BUILD=${1:?usage: valgrind.sh BUILD [TEST...]}
shift
HERE=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null 2>&1 || {
    echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)"
    exit 77
}

UNIT_TESTS="test_check test_cli_progress
test_cmd test_cmd_replay test_codec test_core test_doc_hash test_docs
test_fuzz_findings test_http_upgrade test_json_scan test_json_views
test_oom test_proto test_read_txn test_storage test_txn test_vault
test_views test_views_random test_wal"
[ $# -gt 0 ] && UNIT_TESTS="$*"

export SPRIG_TEST_TMP="$BUILD/test-tmp/valgrind"
# Logs beside, not inside, the tests' directory: a test that removes its
# temporary root took its log with it.
LOGS="$BUILD/valgrind-logs"
mkdir -p "$SPRIG_TEST_TMP" "$LOGS"
# Smaller sizes under valgrind (20-50x slower): the random view test's
# transactions (3,000 normally; 1,000 still reaches a reopen) and the
# command log's crash rounds (12 normally).
export SPRIG_VIEW_RANDOM_TXNS="${SPRIG_VIEW_RANDOM_TXNS:-1000}"
export SPRIG_WAL_ROUNDS="${SPRIG_WAL_ROUNDS:-4}"
# Tests that kill a child after a random time give it this many times
# longer (test_wal: its child had not opened its journal yet).
export SPRIG_TEST_SLOWDOWN="${SPRIG_TEST_SLOWDOWN:-20}"
failed=""
for t in $UNIT_TESTS; do
    exe="$BUILD/tests/$t"
    [ -x "$exe" ] || { echo "valgrind.sh: $exe is not built"; exit 1; }
    log="$LOGS/$t.log"
    mkdir -p "$SPRIG_TEST_TMP"
    start=$(date +%s)
    # --errors-for-leak-kinds=definite: memory still reachable at exit
    # (libsodium's and gnutls's globals) is not a leak of ours
    valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --track-origins=yes \
        --suppressions="$HERE/tests/valgrind.supp" \
        --log-file="$log" "$exe" >"$log.out" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    if [ $rc -eq 0 ]; then
        echo "valgrind: $t passed ($secs s)"
    else
        echo "valgrind: $t FAILED (status $rc, $secs s): $log"
        grep -m 20 -A 12 "== [A-Z][a-z]*.*\(Invalid\|uninitialised\|definitely\|free\)" \
            "$log" | head -60
        tail -20 "$log.out"
        failed="$failed $t"
    fi
done
[ -z "$failed" ] || { echo "valgrind: failed:$failed"; exit 1; }
echo "valgrind: all passed"
