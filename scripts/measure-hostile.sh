#!/usr/bin/env bash
# measure-hostile.sh: what hostile guests cost guestdeck, reproducibly.
#
#   1. peak RSS and wall time of `guestdeck status --json` on a fleet of
#      HUGE guests that each answer guest-get-osinfo with a SIZE-byte line
#      (internal/testpeers/hostile, mode huge) beside HEALTHY simulated
#      guests (`guestdeck sim`), RUNS times;
#   2. dashboard keystroke latency in tmux: a key that moves the cursor is
#      sent and the time until capture-pane shows the detail pane on the
#      next guest is taken, SAMPLES times, first on the healthy guests alone
#      (the control), then with the huge guests beside them; median and p95.
#
# Usage: scripts/measure-hostile.sh        (knobs below, as environment variables)
# Needs: go, tmux, /usr/bin/time (package time). Talks only to unix sockets
# it creates in a temporary directory, and stops everything it started.
set -euo pipefail

HUGE=${HUGE:-4}             # hostile guests sending huge replies
HEALTHY=${HEALTHY:-20}      # simulated healthy guests
SIZE=${SIZE:-$((85 << 20))} # bytes in each huge reply line
RUNS=${RUNS:-3}             # status --json runs
SAMPLES=${SAMPLES:-30}      # keystrokes timed per fleet
KEY_TIMEOUT_MS=${KEY_TIMEOUT_MS:-20000}

cd "$(dirname "$0")/.."
for t in go tmux /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "measure-hostile: $t missing (apt-get install ${t##*/})" >&2; exit 2; }
done

work=$(mktemp -d /tmp/gdmh.XXXXXX) # short: unix socket paths must stay under 108 bytes
pids=()
tmux_server="gdmeasure$$"
cleanup() {
	tmux -L "$tmux_server" kill-server 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "building into $work ..."
go build -o "$work/guestdeck" ./cmd/guestdeck
go build -o "$work/hostile-agent" ./internal/testpeers/hostile/cmd/hostile-agent

"$work/guestdeck" sim --guests "$HEALTHY" --prefix good --dir "$work/good" >"$work/sim.out" 2>&1 &
pids+=($!)
"$work/hostile-agent" -mode huge -n "$HUGE" -size "$SIZE" -dir "$work/huge" >"$work/huge.out" 2>&1 &
pids+=($!)
for f in "$work/good/fleet.toml" "$work/huge/fleet.toml"; do
	for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.1; done
	[ -s "$f" ] || { echo "measure-hostile: no $f" >&2; cat "$work"/*.out >&2; exit 1; }
done
sleep 0.5 # sim writes fleet.toml as it starts serving: let it settle
cp "$work/good/fleet.toml" "$work/healthy.toml"
{ cat "$work/good/fleet.toml"; grep -v '^#' "$work/huge/fleet.toml"; } >"$work/fleet.toml"
export HOME="$work/home" XDG_CONFIG_HOME="" NO_COLOR=1
mkdir -p "$HOME"

echo
echo "== status --json: $HUGE guests x $SIZE-byte replies + $HEALTHY healthy, $(nproc) cores"
rss=()
for i in $(seq "$RUNS"); do
	/usr/bin/time -v -o "$work/time.txt" "$work/guestdeck" -c "$work/fleet.toml" status --json >"$work/status.json" 2>"$work/status.err" || true
	kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
	wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$work/time.txt")
	ready=$(grep -c '"state": "ready"' "$work/status.json" || true)
	toolarge=$(grep -ci 'too large' "$work/status.json" || true)
	printf 'run %d: peak RSS %d MiB, wall %s, %d guests ready, %d "too large" errors, %d bytes of JSON\n' \
		"$i" $((kb / 1024)) "$wall" "$ready" "$toolarge" "$(stat -c %s "$work/status.json")"
	rss+=($((kb / 1024)))
done
printf 'peak RSS over %d runs: min %d MiB, max %d MiB\n' "$RUNS" \
	"$(printf '%s\n' "${rss[@]}" | sort -n | head -1)" "$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# cursor_name prints the guest the detail pane is on (the tab bar's last word).
cursor_name() {
	tmux -L "$tmux_server" capture-pane -p -t gd | awk '/^1 Overview/ {print $NF; exit}'
}

# latency FLEET LABEL: SAMPLES cursor moves in a fresh dashboard.
latency() {
	local cfg=$1 label=$2 total
	total=$(grep -c '^\[\[guest\]\]' "$cfg")
	tmux -L "$tmux_server" kill-server 2>/dev/null || true
	local t0
	t0=$(now_ms)
	tmux -L "$tmux_server" -f /dev/null new-session -d -s gd -x 140 -y 40 \
		"$work/guestdeck" -c "$cfg"
	until tmux -L "$tmux_server" capture-pane -p -t gd | grep -q "guestdeck $total guests"; do
		[ $(($(now_ms) - t0)) -gt 60000 ] && { echo "$label: the dashboard did not start" >&2; return 1; }
		sleep 0.05
	done
	local started=$(($(now_ms) - t0))
	until [ -n "$(cursor_name)" ]; do sleep 0.05; done
	local ms=() key before after s lost=0
	for i in $(seq "$SAMPLES"); do
		# Down then up, so the cursor stays among the first guests.
		if [ $((i % 2)) -eq 1 ]; then key=j; else key=k; fi
		before=$(cursor_name)
		s=$(now_ms)
		tmux -L "$tmux_server" send-keys -t gd "$key"
		while :; do
			after=$(cursor_name)
			[ -n "$after" ] && [ "$after" != "$before" ] && break
			if [ $(($(now_ms) - s)) -gt "$KEY_TIMEOUT_MS" ]; then
				lost=$((lost + 1))
				break
			fi
		done
		ms+=($(($(now_ms) - s)))
		sleep 0.2 # a person's pace, not a key flood
	done
	local sorted n pid hwm
	sorted=$(printf '%s\n' "${ms[@]}" | sort -n)
	n=${#ms[@]}
	# The pane runs guestdeck itself: its pid is the pane's.
	pid=$(tmux -L "$tmux_server" display-message -p -t gd '#{pane_pid}')
	hwm=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null || echo '?')
	printf '%s: first screen after %d ms; keystroke to screen over %d keys: median %d ms, p95 %d ms, max %d ms, %d not shown within %d ms; dashboard peak RSS %s MiB\n' \
		"$label" "$started" "$n" \
		"$(echo "$sorted" | sed -n "$(((n + 1) / 2))p")" \
		"$(echo "$sorted" | sed -n "$(((n * 95 + 99) / 100))p")" \
		"$(echo "$sorted" | tail -1)" "$lost" "$KEY_TIMEOUT_MS" "$hwm"
	echo "  samples (ms, sorted): $(echo $sorted)"
	tmux -L "$tmux_server" kill-server 2>/dev/null || true
}

echo
echo "== dashboard keystroke latency (tmux 140x40, capture-pane polling)"
latency "$work/healthy.toml" "$HEALTHY healthy guests (control)"
latency "$work/fleet.toml" "$HEALTHY healthy + $HUGE huge guests"
