#!/usr/bin/env bash
# scale.sh: guestdeck at N simulated guests, reproducibly (README, Performance).
#
#   1. `guestdeck status --json` on the whole fleet, RUNS times, beside the
#      raw lower bound (scripts/rawbound: connect, resync, five commands per
#      guest, 64 at once, no decoding) run right after it each time: wall
#      time, CPU, peak RSS, and the ratio;
#   2. the dashboard in tmux (140x40, colour off) on the same fleet: time
#      from launch until the rows on screen are all ready (visible-ready),
#      and until the status bar says every guest is ready (all-ready),
#      the all-ready time as a ratio to a raw-bound run made right before
#      the launch (the machine's load drifts: the status runs' bound is
#      not this one's), beside the same reading of the screen as the
#      launch's;
#   3. then, after WARMUP seconds, the dashboard's CPU (share of one core,
#      from /proc/PID/stat) and RSS over a WINDOW-second window.
#
# The guests are `guestdeck sim` processes of at most 5,000 guests each (one
# listener and one connection per guest; past its open-file limit a sim
# cannot accept). The simulators' own CPU is not in the dashboard's figure,
# but they share the machine: note the load printed first.
#
# Usage: scripts/scale.sh                 (knobs below, as environment variables)
#        N=1000 WINDOW=120 scripts/scale.sh
# Needs: go, tmux, /usr/bin/time (package time). Talks only to unix sockets
# it creates in a temporary directory, and stops everything it started.
set -euo pipefail

N=${N:-10000}            # simulated guests
PER=${PER:-5000}         # guests per sim process
RUNS=${RUNS:-2}          # status --json runs (each beside a raw-bound run)
WARMUP=${WARMUP:-10}     # seconds after all-ready before the window
# A steady state's minute holds every guest's slow refresh (guest-info and
# the slow items, every slow_interval, 60 s), as the raw bounds' window
# holds one round of the slow commands: a shorter window leaves both out.
WINDOW=${WINDOW:-60}     # seconds of steady state measured
READY_TIMEOUT=${READY_TIMEOUT:-120}
METRICS=${METRICS:-}     # [defaults] metrics_interval ("0": metrics off); empty: the default
EXCLUSIVE=${EXCLUSIVE:-} # "true": [defaults] exclusive = true (hold every agent socket); empty: shared
DASHENV=${DASHENV:-}     # extra environment for the dashboard alone, e.g. "GOMAXPROCS=1 GOGC=50"
PROFILE=${PROFILE:-}     # a directory: CPU and heap profiles of the steady-state window go there (cpu.pprof, cpu.pprof.heap)
LAUNCH_PROFILE=${LAUNCH_PROFILE:-} # a directory: the same of the dashboard's launch, from its start to all ready (not with PROFILE)

cd "$(dirname "$0")/.."
for t in go tmux /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "scale: $t missing (apt-get install ${t##*/})" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((2 * PER + 100)) ] || { echo "scale: open-file limit $(ulimit -n) is too low for $PER guests per sim (set PER lower)" >&2; exit 2; }

work=$(mktemp -d /tmp/gdsc.XXXXXX) # short: unix socket paths must stay under 108 bytes
pids=()
tmux_server="gdscale$$"
cleanup() {
	tmux -L "$tmux_server" kill-server 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "building into $work ..."
go build -o "$work/guestdeck" ./cmd/guestdeck
go build -o "$work/rawbound" ./scripts/rawbound

dirs=()
for ((p = 0; p * PER < N; p++)); do
	k=$((N - p * PER < PER ? N - p * PER : PER))
	d="$work/s$p"
	dirs+=("$d")
	"$work/guestdeck" sim --guests "$k" --prefix "p$p" --dir "$d" >"$work/sim$p.out" 2>&1 &
	pids+=($!)
done
for d in "${dirs[@]}"; do
	for _ in $(seq 600); do [ -s "$d/fleet.toml" ] && break; sleep 0.1; done
	[ -s "$d/fleet.toml" ] || { echo "scale: no $d/fleet.toml" >&2; cat "$work"/sim*.out >&2; exit 1; }
done
sleep 1 # sim writes fleet.toml as it starts serving: let it settle
{
	if [ -n "$METRICS$EXCLUSIVE" ]; then
		echo '[defaults]'
		[ -z "$METRICS" ] || printf 'metrics_interval = "%s"\n' "$METRICS"
		[ -z "$EXCLUSIVE" ] || printf 'exclusive = %s\n' "$EXCLUSIVE"
	fi
	for d in "${dirs[@]}"; do grep -v '^#' "$d/fleet.toml"; done
} >"$work/fleet.toml"
export HOME="$work/home" XDG_CONFIG_HOME="" NO_COLOR=1
mkdir -p "$HOME"

echo "== $N guests in ${#dirs[@]} sim processes, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), metrics_interval ${METRICS:-default}, exclusive ${EXCLUSIVE:-false}"

status_asks=guest-info,guest-get-time,guest-network-get-interfaces,guest-get-vcpus,guest-get-disks,guest-get-osinfo,guest-get-host-name,guest-get-timezone,guest-get-users,guest-get-fsinfo
echo
echo "== status --json beside the raw bound (rawbound: connect, resync, 5 commands, 64 at once; then the 10 status asks)"
for i in $(seq "$RUNS"); do
	/usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" "$work/guestdeck" -c "$work/fleet.toml" status --json >"$work/status.json" 2>"$work/status.err" || true
	read -r wall usr sys kb <"$work/time.txt"
	ready=$(grep -c '"state": "ready"' "$work/status.json" || true)
	raw=$("$work/rawbound" -workers 64 "${dirs[@]}" 2>"$work/raw.err" | awk '{print $(NF-1)}')
	# The same bound asking what status asks of these agents (the
	# simulator's 7.2: no load or routes), not five commands.
	rawall=$("$work/rawbound" -workers 64 -ask "$status_asks" "${dirs[@]}" 2>"$work/raw.err" | awk '{print $(NF-1)}')
	awk -v i="$i" -v w="$wall" -v u="$usr" -v s="$sys" -v kb="$kb" -v r="$ready" -v raw="$raw" -v rawall="$rawall" -v n="$N" 'BEGIN {
		printf "run %d: status --json %.2f s wall, %.2f s CPU, %d MiB peak RSS, %d of %d ready; raw bound %.2f s; ratio %.2fx; asking what status asks %.2f s, ratio %.2fx\n",
			i, w, u + s, kb / 1024, r, n, raw, w / raw, rawall, w / rawall }'
done

now_ms() { echo $(($(date +%s%N) / 1000000)); }
cap() { tmux -L "$tmux_server" capture-pane -p -t "${1:-gd}"; }

# look reads the screen of tmux session $1 once, as the launch is timed:
# it sets visible and all (ms since t0) when the rows on screen, and when
# all N guests, are first ready.
look() {
	screen=$(cap "$1")
	now=$(now_ms)
	# The rows: between the header (NAME) and the status bar.
	rows=$(printf '%s\n' "$screen" | awk '/NAME/ {on = 1; next} on && /^ready [0-9]/ {exit} on && NF {print}')
	if [ -z "$visible" ] && [ -n "$rows" ] && ! printf '%s\n' "$rows" | grep -q 'connecting' && printf '%s\n' "$rows" | grep -q ' ready '; then
		visible=$((now - t0))
	fi
	if printf '%s\n' "$screen" | grep -Eq "^ready $N( |$)"; then
		all=$((now - t0))
	fi
}

echo
echo "== dashboard in tmux (140x40), after a raw-bound run"
# Reading the screen every 20 ms (tmux and a few processes each time) costs
# the machine too: it slowed a raw-bound run by 10-30 % at 2,000 guests. So
# the raw bound the launch is compared with runs beside the same reading,
# of a placeholder pane.
tmux -L "$tmux_server" new-session -d -s placeholder -x 140 -y 40 "cat $work/fleet.toml; exec sleep 3600"
(
	t0=$(now_ms) visible="" all=""
	while [ ! -e "$work/raw.done" ]; do look placeholder; sleep 0.02; done
) &
reader=$!
pids+=("$reader")
launch_raw=$("$work/rawbound" -workers 64 "${dirs[@]}" 2>"$work/raw.err" | awk '{print $(NF-1)}')
touch "$work/raw.done"
wait "$reader"
tmux -L "$tmux_server" kill-session -t placeholder
t0=$(now_ms)
profenv=""
if [ -n "$PROFILE" ]; then
	mkdir -p "$PROFILE"
	profenv="GUESTDECK_CPUPROFILE=$(cd "$PROFILE" && pwd)/cpu.pprof"
elif [ -n "$LAUNCH_PROFILE" ]; then
	mkdir -p "$LAUNCH_PROFILE"
	profenv="GUESTDECK_CPUPROFILE=$(cd "$LAUNCH_PROFILE" && pwd)/cpu.pprof GUESTDECK_CPUPROFILE_START=1"
fi
tmux -L "$tmux_server" new-session -d -s gd -x 140 -y 40 "exec env $DASHENV $profenv $work/guestdeck -c $work/fleet.toml"
pid=$(tmux -L "$tmux_server" display -p -t gd '#{pane_pid}')
visible="" all=""
deadline=$((t0 + READY_TIMEOUT * 1000))
while [ -z "$all" ] && [ "$(now_ms)" -lt "$deadline" ]; do
	look gd
	sleep 0.02
done
[ -n "$all" ] || { echo "scale: not all ready after ${READY_TIMEOUT}s; the screen:" >&2; cap >&2; exit 1; }
if [ -n "$LAUNCH_PROFILE" ] && [ -z "$PROFILE" ]; then
	kill -USR2 "$pid"
	for _ in $(seq 100); do [ -s "$LAUNCH_PROFILE/cpu.pprof.heap" ] && break; sleep 0.1; done
fi
awk -v v="${visible:-$all}" -v a="$all" -v n="$N" -v raw="$launch_raw" 'BEGIN {
	printf "visible rows ready after %d ms, all %d ready after %d ms; raw bound %.2f s; all-ready ratio %.2fx\n",
		v, n, a, raw, a / 1000 / raw }'

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
sleep "$WARMUP"
[ -z "$PROFILE" ] || kill -USR1 "$pid"
c0=$(ticks) w0=$(now_ms) rmax=0 rsum=0 rn=0
end=$((w0 + WINDOW * 1000))
while [ "$(now_ms)" -lt "$end" ]; do
	r=$(rss_kb)
	rsum=$((rsum + r)) rn=$((rn + 1))
	((r > rmax)) && rmax=$r
	sleep 1
done
c1=$(ticks) w1=$(now_ms)
if [ -n "$PROFILE" ]; then
	kill -USR2 "$pid"
	for _ in $(seq 100); do [ -s "$PROFILE/cpu.pprof.heap" ] && break; sleep 0.1; done
fi
hz=$(getconf CLK_TCK)
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
dash_cpu=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v ms=$((w1 - w0)) 'BEGIN { printf "%.1f", 100 * c / hz / (ms / 1000) }')
awk -v cpu="$dash_cpu" -v ms=$((w1 - w0)) -v avg=$((rsum / rn)) -v max="$rmax" -v hwm="$hwm" -v n="$N" 'BEGIN {
	printf "steady state over %.0f s: %.1f %% of one core, RSS %d MiB average, %d MiB max (%.1f KB per guest), peak since launch %d MiB\n",
		ms / 1000, cpu, avg / 1024, max / 1024, max / n, hwm / 1024 }'
printf '%s\n' "$(cap | tail -2 | head -1)"

# The steady-state lower bounds, after the dashboard has let go of every
# socket (an agent serves one client at a time), with the dashboard's
# runtime settings (DASHENV): each holds a connection per guest, asks what
# the dashboard's polls ask every 5 s, decodes nothing, and reads its own
# CPU. "per-slot": a goroutine per guest woken at its own slot; "ticked":
# the same with the slots rounded up to 50 ms, as the dashboard's scheduler
# coalesces them; "epoll": one thread driving every socket through epoll,
# woken every 50 ms. On this kind of machine the cost is mostly waking up
# (the kernel's context switches), so the ticked ones are the lower bound.
tmux -L "$tmux_server" kill-server 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
echo
echo "== steady-state raw bounds (rawbound -steady: held connections, the same commands every 5 s, no decoding)"
raw_min=
for variant in per-slot ticked epoll; do
	case $variant in
	per-slot) flags=() ;;
	ticked) flags=(-tick 50ms) ;;
	epoll) flags=(-epoll -tick 50ms) ;;
	esac
	out=$(env $DASHENV "$work/rawbound" -steady "${flags[@]}" -warmup "${WARMUP}s" -window "${WINDOW}s" "${dirs[@]}" 2>"$work/raws.err")
	printf '%-8s %s\n' "$variant" "$out"
	c=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9.]*\) % of one core.*/\1/p')
	[ -n "$c" ] && awk -v c="$c" -v m="${raw_min:-}" 'BEGIN { exit !(m == "" || c < m) }' && raw_min=$c
done
awk -v d="$dash_cpu" -v r="${raw_min:-0}" 'BEGIN { if (r > 0) printf "dashboard steady CPU %.1f %% against the lowest raw bound %.1f %%: %.2fx\n", d, r, d / r }'
