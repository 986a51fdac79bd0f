#!/usr/bin/env bash
# abdash.sh: two guestdeck builds' dashboards in steady state, in turns, on
# the same simulated fleet (README, Performance). On a shared 2-core
# machine one run of scripts/scale.sh varies by a third from the next; runs
# of two builds taken in turns, A B B A A B ..., on the same simulators,
# compare them under the same drift.
#
#   scripts/abdash.sh OLD_CHECKOUT_OR_BINARY NEW_CHECKOUT_OR_BINARY
#   PAIRS=4 N=10000 scripts/abdash.sh /work/old .
#
# A directory is built (go build ./cmd/guestdeck); a file is used as is.
# The simulators are the second build's. Each turn starts the dashboard in
# tmux (140x40, colour off), waits for "ready N" on its status bar, lets it
# settle WARMUP seconds, and reads its CPU (share of one core, from
# /proc/PID/stat) and RSS over WINDOW seconds. Needs: go, tmux. Talks only
# to the unix sockets it creates in a temporary directory, and stops
# everything it started.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 OLD NEW (checkouts or binaries)" >&2; exit 2; }
N=${N:-10000}
PER=${PER:-5000}
PAIRS=${PAIRS:-3}
WARMUP=${WARMUP:-10}
WINDOW=${WINDOW:-60} # a minute: every guest's slow refresh once (scale.sh)
READY_TIMEOUT=${READY_TIMEOUT:-120}

for t in go tmux; do
	command -v "$t" >/dev/null || { echo "abdash: $t missing (apt-get install $t)" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d /tmp/gdab.XXXXXX)
pids=()
tmux_server="gdab$$"
cleanup() {
	tmux -L "$tmux_server" kill-server 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

bin() { # bin SRC NAME: the binary for SRC, built into $work/NAME if SRC is a checkout
	if [ -d "$1" ]; then
		(cd "$1" && go build -o "$work/$2" ./cmd/guestdeck)
		echo "$work/$2"
	else
		echo "$1"
	fi
}
A=$(bin "$1" a)
B=$(bin "$2" b)

dirs=()
for ((p = 0; p * PER < N; p++)); do
	k=$((N - p * PER < PER ? N - p * PER : PER))
	d="$work/s$p"
	dirs+=("$d")
	"$B" sim --guests "$k" --prefix "p$p" --dir "$d" >"$work/sim$p.out" 2>&1 &
	pids+=($!)
done
for d in "${dirs[@]}"; do
	for _ in $(seq 600); do [ -s "$d/fleet.toml" ] && break; sleep 0.1; done
	[ -s "$d/fleet.toml" ] || { echo "abdash: no $d/fleet.toml" >&2; exit 1; }
done
sleep 1
for d in "${dirs[@]}"; do grep -v '^#' "$d/fleet.toml"; done >"$work/fleet.toml"
export HOME="$work/home" XDG_CONFIG_HOME="" NO_COLOR=1
mkdir -p "$HOME"
hz=$(getconf CLK_TCK)
echo "== $N guests, $PAIRS pairs, A=$1 B=$2, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

turn() { # turn LABEL BINARY: one steady-state reading
	tmux -L "$tmux_server" new-session -d -s gd -x 140 -y 40 "exec $2 -c $work/fleet.toml"
	local pid t0 ok=""
	pid=$(tmux -L "$tmux_server" display -p -t gd '#{pane_pid}')
	t0=$(date +%s)
	while [ $(($(date +%s) - t0)) -lt "$READY_TIMEOUT" ]; do
		if tmux -L "$tmux_server" capture-pane -p -t gd | grep -Eq "^ready $N( |$)"; then ok=1; break; fi
		sleep 0.5
	done
	[ -n "$ok" ] || { echo "abdash: $1 not all ready after ${READY_TIMEOUT}s" >&2; tmux -L "$tmux_server" capture-pane -p -t gd >&2; exit 1; }
	sleep "$WARMUP"
	local c0 c1 u0 u1 w0 w1 r rsum=0 rn=0 rmax=0
	c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	u0=$(awk '{print $14}' "/proc/$pid/stat")
	w0=$(date +%s%N)
	for _ in $(seq "$WINDOW"); do
		r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
		rsum=$((rsum + r)) rn=$((rn + 1))
		((r > rmax)) && rmax=$r
		sleep 1
	done
	c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	u1=$(awk '{print $14}' "/proc/$pid/stat")
	w1=$(date +%s%N)
	local bar
	bar=$(tmux -L "$tmux_server" capture-pane -p -t gd | grep -E '^ready [0-9]' | head -1)
	tmux -L "$tmux_server" kill-session -t gd
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	sleep 3 # the simulators see the hang-ups: the next dashboard finds every channel free
	# User and system time apart: the system calls' cost drifts most with
	# the machine's load (a VM's), the user time is guestdeck's own work.
	awk -v l="$1" -v c=$((c1 - c0)) -v u=$((u1 - u0)) -v hz="$hz" -v ns=$((w1 - w0)) -v avg=$((rsum / rn)) -v max="$rmax" -v bar="$bar" 'BEGIN {
		s = ns / 1e9
		printf "%s  %.1f %% of one core (user %.1f, system %.1f)  RSS %d MiB average, %d MiB max  | %s\n",
			l, 100 * c / hz / s, 100 * u / hz / s, 100 * (c - u) / hz / s, avg / 1024, max / 1024, bar }'
}

for i in $(seq "$PAIRS"); do
	if ((i % 2)); then turn A "$A"; turn B "$B"; else turn B "$B"; turn A "$A"; fi
done
