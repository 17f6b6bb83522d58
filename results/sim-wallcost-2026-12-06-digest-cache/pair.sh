#!/bin/sh
# pair.sh SCENARIO LABEL BIN_A BIN_B: both at once, one per core
S=$1; L=$2; A=$3; B=$4
for b in $A $B; do
  nice -n 5 /usr/bin/time -f "$b $L: %e s wall, %M KB" /tmp/bftlab-$b sim $S --protocol hotstuff --record /tmp/wc/$L-$b.json > /tmp/wc/$L-$b.txt 2>&1 &
done
wait
