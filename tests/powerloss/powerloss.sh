#!/bin/sh
# powerloss.sh -- runs the power-loss harness (tests/powerloss/powerloss.c)
# over every workload mode: `short` (ctest, make test), `asan` (ctest in
# the ASan build) or `long` (make powerloss).
# Usage: powerloss.sh short|asan|long DRIVER RECORDER ROOT
# Modes full/immediate, full/lazy, normal/immediate and none/immediate
# must pass every image (`none` promises no acknowledged write on a power
# loss, but still the prefix rule, the open and the integrity check; its
# key-value writes are lazy whatever the persistence, so none/lazy would
# repeat none/immediate); a self-test run (a disk that ignores the command
# log's syncs) must be caught.  Images are built on /dev/shm when
# it exists (opening an image syncs; on tmpfs that costs nothing), else
# under ROOT.  SPRIG_SEED replays; SPRIG_PL_STEPS, SPRIG_PL_IMAGES override
# the sizes; SPRIG_PL_KEEP=1 keeps failing images.
set -e
size=$1 driver=$2 rec=$3 root=$4
rec=$(cd "$(dirname "$rec")" && pwd)/$(basename "$rec") # LD_PRELOAD: absolute
case $size in
long) steps=600 images=300 self=60 ;;
asan) steps=40 images=4 self=2 ;;
*) steps=80 images=10 self=4 ;;
esac
steps=${SPRIG_PL_STEPS:-$steps}
images=${SPRIG_PL_IMAGES:-$images}
seed=${SPRIG_SEED:-$(date +%s)}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    root=/dev/shm/sprig-powerloss.$$
fi
echo "powerloss $size: seed=$seed (replay with SPRIG_SEED=$seed), root $root"
start=$(date +%s)
status=0
one() { # mode kv images [flags]
    rc=0
    SPRIG_SEED=$seed "$driver" --preload "$rec" --root "$root/$1-$2" \
        --mode "$1" --kv "$2" --steps "$steps" --images "$3" \
        ${SPRIG_PL_KEEP:+--keep} $4 || rc=$?
    [ $rc -eq 77 ] && { echo "powerloss: SKIP: LD_PRELOAD not honoured"; exit 77; }
    [ $rc -ne 0 ] && status=1
    return 0
}
one full immediate "$images"
one full lazy "$images"
one normal immediate "$images"
one none immediate "$images"
one full selftest "$self" --selftest
[ -z "$SPRIG_PL_KEEP" ] && rm -rf "$root"
echo "powerloss $size: $(($(date +%s) - start)) s in all"
exit $status
