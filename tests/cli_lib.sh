# cli_lib.sh -- helpers shared by the CLI test scripts (cli_test.sh,
# cli_kv_test.sh, cli_view_test.sh), sourced by them.  The sourcing script
# sets NAME (its name, for messages and the scratch directory) and keeps
# its own arguments: PATH/TO/sprig [SCRATCH_DIR].  Sets BIN, T (emptied),
# DATA, the pass/fail counters and the run/expect helpers below.

BIN=$1
T=${2:-$(dirname "$BIN")/$NAME-tmp}
if [ ! -x "$BIN" ]; then
    echo "usage: sh $0 PATH/TO/sprig [SCRATCH_DIR]" >&2
    exit 2
fi
rm -rf "$T" && mkdir -p "$T" || exit 1
DATA=$T/data
pass=0
fail=0

# sp ARGS...: the tool on the test storage.
sp() {
    "$BIN" --path "$DATA" "$@"
}

# run CMD...: run it with no stdin, keeping stdout, stderr and exit status.
run() {
    "$@" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

# run_in FILE CMD...: as run, with stdin from FILE.
run_in() {
    f=$1
    shift
    "$@" >"$T/out" 2>"$T/err" <"$f"
    rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

good() {
    pass=$((pass + 1))
}

bad() {
    fail=$((fail + 1))
    echo "FAIL: $1"
    echo "    exit:   $rc"
    echo "    stdout: $out"
    echo "    stderr: $err"
    shift
    for line in "$@"; do
        echo "    $line"
    done
}

# expect NAME STATUS STDOUT: the last run exited STATUS and printed exactly
# STDOUT (and, on success, nothing on stderr).
expect() {
    if [ "$rc" = "$2" ] && [ "$out" = "$3" ] &&
        { [ "$2" != 0 ] || [ -z "$err" ]; }; then
        good
    else
        bad "$1" "wanted exit $2 and stdout: $3"
    fi
}

# expect_err NAME STATUS TEXT: the last run exited STATUS, printed nothing on
# stdout and TEXT (a substring) on stderr, in the form "sprig: ...".
expect_err() {
    case $err in
    "sprig: "*"$3"*) matched=1 ;;
    *) matched=0 ;;
    esac
    if [ "$rc" = "$2" ] && [ -z "$out" ] && [ $matched = 1 ]; then
        good
    else
        bad "$1" "wanted exit $2, empty stdout and on stderr: $3"
    fi
}

# expect_has NAME STATUS TEXT: the last run exited STATUS and stdout has
# TEXT (a substring).
expect_has() {
    case $out in
    *"$3"*) matched=1 ;;
    *) matched=0 ;;
    esac
    if [ "$rc" = "$2" ] && [ $matched = 1 ]; then
        good
    else
        bad "$1" "wanted exit $2 and on stdout: $3"
    fi
}
