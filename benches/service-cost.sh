#!/bin/bash
# flowmeter log's CPU and memory at idle and under iperf3 TCP load, on a veth pair between
# two namespaces this script makes and removes.
set -u
# Run as root after `cargo xtask build`. Needs iperf3 (cargo xtask setup installs it).
TMP=$(mktemp -d)
A=fmsvc-a-$$; B=fmsvc-b-$$
cleanup() { pkill -P $$ 2>/dev/null; ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; }
trap 'cleanup; rm -rf "$TMP"' EXIT
ip netns add $A; ip netns add $B
ip link add fmsva$$ type veth peer name fmsvb$$
ip link set fmsva$$ netns $A; ip link set fmsvb$$ netns $B
ip -n $A addr add 10.98.0.1/24 dev fmsva$$; ip -n $B addr add 10.98.0.2/24 dev fmsvb$$
ip -n $A link set fmsva$$ up; ip -n $B link set fmsvb$$ up; ip -n $A link set lo up; ip -n $B link set lo up
BIN=${FLOWMETER:-$(dirname "$0")/../target/release/flowmeter}
measure() { # $1 label, $2 seconds
  ip netns exec $A $BIN log --iface fmsva$$ --output /dev/null --summary 3600 \
    --record-dir "$TMP/recordings" & P=$!
  sleep 2
  T0=$(awk '{print $14+$15}' /proc/$P/stat); S0=$(date +%s.%N)
  eval "$3"
  sleep $2
  T1=$(awk '{print $14+$15}' /proc/$P/stat); S1=$(date +%s.%N)
  HWM=$(awk '/VmHWM/{print $2}' /proc/$P/status)
  kill -TERM $P; wait $P
  TCK=$(getconf CLK_TCK)
  CPU=$(awk -v t="$((T1-T0))" -v k="$TCK" -v a="$S0" -v b="$S1" 'BEGIN {printf "%.2f", 100*t/k/(b-a)}')
  echo "$1: cpu $CPU% of one core, peak RSS $((HWM/1024)) MiB"
}
measure "idle" 10 ":"
ip netns exec $B iperf3 -s -1 >/dev/null 2>&1 &
sleep 0.5
measure "iperf3 TCP, 1 flow" 10 "ip netns exec $A iperf3 -c 10.98.0.2 -t 11 >$TMP/iperf.txt 2>&1 &"
sleep 2
ip netns exec $B iperf3 -s -1 >/dev/null 2>&1 &
sleep 0.5
measure "iperf3 TCP, 64 parallel flows" 10 "ip netns exec $A iperf3 -c 10.98.0.2 -P 64 -t 11 >$TMP/iperf64.txt 2>&1 &"
grep -E "sender|receiver" $TMP/iperf.txt | tail -2
grep -E "SUM.*sender" $TMP/iperf64.txt | tail -1
