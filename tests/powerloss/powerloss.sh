#!/bin/sh
# powerloss.sh -- runs the power-loss harness over every workload mode:
# `short` (ctest, make test) or `long` (make powerloss).  Usage:
#   powerloss.sh short|long DRIVER RECORDER ROOT
# Each mode is one recorded run and its images (tests/powerloss/powerloss.c);
# SPRIG_SEED replays, SPRIG_PL_STEPS / SPRIG_PL_IMAGES override the sizes.
set -e
size=$1 driver=$2 rec=$3 root=$4
if [ "$size" = long ]; then steps=1500 images=1000; else steps=120 images=45; fi
steps=${SPRIG_PL_STEPS:-$steps}
images=${SPRIG_PL_IMAGES:-$images}
seed=${SPRIG_SEED:-$(date +%s)}
echo "powerloss $size: seed=$seed (replay with SPRIG_SEED=$seed)"
start=$(date +%s)
status=0
for m in full/immediate full/lazy normal/immediate none/immediate; do
    mode=${m%/*} kv=${m#*/}
    rc=0
    SPRIG_SEED=$seed "$driver" --preload "$rec" --root "$root/$mode-$kv" \
        --mode "$mode" --kv "$kv" --steps "$steps" --images "$images" \
        ${SPRIG_PL_KEEP:+--keep} || rc=$?
    [ $rc -eq 77 ] && exit 77
    [ $rc -ne 0 ] && status=1
done
echo "powerloss $size: $(($(date +%s) - start)) s in all"
exit $status
