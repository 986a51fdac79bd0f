package fleet

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Option is one --name [VALUE] word of an action (Spec.Options), virsh's
// spelling where virsh has one: freeze --mountpoint, fstrim --minimum,
// clock (domtime) --now, --sync, --time. Options come right after the
// action's name; a repeatable one may come again.
type Option struct {
	Name string // without the dashes
	Arg  string // the value's name in usage ("PATH"); "" for an option without value
	Help string
	// Repeat: the option may be given more than once (each adds a value).
	Repeat bool
	// Refused is, for an option virsh has but the agent cannot honour, the
	// error that says why (thaw --mountpoint): refused rather than
	// silently meaning something else.
	Refused string

	// set records the value (v is "" for an option without value).
	set func(a *Action, v string) error
	// show is the option's words in Action.String, nil when unset.
	show func(a Action) []string
}

// Clock modes: what clock's options select (Action.Mode).
const (
	ClockGet  = "get"  // no option: read
	ClockNow  = "now"  // --now: set to the host clock
	ClockSync = "sync" // --sync: set from the guest's RTC
	ClockSet  = "set"  // --time SECONDS
)

var mountpointOption = Option{
	Name: "mountpoint", Arg: "PATH", Repeat: true,
	Help: "only this filesystem (guest-fsfreeze-freeze-list); again for more",
	set: func(a *Action, v string) error {
		if v == "" {
			return fmt.Errorf("--mountpoint needs a path")
		}
		a.Mountpoints = append(a.Mountpoints, v)
		return nil
	},
	show: func(a Action) []string {
		var out []string
		for _, m := range a.Mountpoints {
			out = append(out, "--mountpoint", m)
		}
		return out
	},
}

var minimumOption = Option{
	Name: "minimum", Arg: "BYTES",
	Help: "skip free ranges smaller than BYTES (a hint the guest may ignore)",
	set: func(a *Action, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("--minimum %q: want a number of bytes, 0 or more", v)
		}
		a.Minimum = n
		return nil
	},
	show: func(a Action) []string {
		if a.Minimum == 0 {
			return nil
		}
		return []string{"--minimum", strconv.FormatInt(a.Minimum, 10)}
	},
}

// maxClockSeconds is the last second a clock in nanoseconds (int64) holds.
const maxClockSeconds = math.MaxInt64 / int64(time.Second)

var clockOptions = []Option{
	{Name: "now", Help: "set the guest clock to the host clock", set: clockMode(ClockNow), show: showMode(ClockNow, "--now")},
	{Name: "sync", Help: "set the guest clock from its own hardware clock (RTC)", set: clockMode(ClockSync), show: showMode(ClockSync, "--sync")},
	{Name: "time", Arg: "SECONDS", Help: "set the guest clock to SECONDS since 1970-01-01 UTC",
		set: func(a *Action, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > maxClockSeconds {
				return fmt.Errorf("--time %q: want seconds since 1970-01-01 UTC, from 0 to %d", v, maxClockSeconds)
			}
			if err := clockMode(ClockSet)(a, ""); err != nil {
				return err
			}
			a.Seconds = n
			return nil
		},
		show: func(a Action) []string {
			if a.Mode != ClockSet {
				return nil
			}
			return []string{"--time", strconv.FormatInt(a.Seconds, 10)}
		}},
}

// clockMode sets clock's mode; two options that set different ones exclude
// each other.
func clockMode(mode string) func(a *Action, _ string) error {
	return func(a *Action, _ string) error {
		if a.Mode != "" && a.Mode != mode {
			return fmt.Errorf("--now, --sync and --time exclude each other")
		}
		a.Mode = mode
		return nil
	}
}

func showMode(mode, word string) func(a Action) []string {
	return func(a Action) []string {
		if a.Mode == mode {
			return []string{word}
		}
		return nil
	}
}

// option finds the option word w (--name or --name=value) names.
func (s Spec) option(w string) (o Option, value string, inline, ok bool) {
	if !strings.HasPrefix(w, "--") {
		return Option{}, "", false, false
	}
	name, value, inline := strings.Cut(w[2:], "=")
	for _, o := range s.Options {
		if o.Name == name {
			return o, value, inline, true
		}
	}
	return Option{}, "", false, false
}

// parseOptions reads the options at the start of rest into a and returns
// how many words they took.
func (s Spec) parseOptions(a *Action, rest []string) (int, error) {
	seen := map[string]bool{}
	i := 0
	for i < len(rest) {
		w := rest[i]
		o, v, inline, ok := s.option(w)
		if !ok {
			if strings.HasPrefix(w, "--") && len(s.Options) > 0 {
				return 0, fmt.Errorf("%s: unknown option %q (want %s)", s.Kind, w, s.optionUsage())
			}
			break
		}
		i++
		if o.Refused != "" {
			return 0, fmt.Errorf("%s --%s: %s", s.Kind, o.Name, o.Refused)
		}
		if seen[o.Name] && !o.Repeat {
			return 0, fmt.Errorf("%s: --%s given twice", s.Kind, o.Name)
		}
		seen[o.Name] = true
		switch {
		case o.Arg == "" && inline:
			return 0, fmt.Errorf("%s: --%s takes no value", s.Kind, o.Name)
		case o.Arg != "" && !inline:
			if i == len(rest) {
				return 0, fmt.Errorf("%s: --%s needs %s", s.Kind, o.Name, o.Arg)
			}
			v = rest[i]
			i++
		}
		if err := o.set(a, v); err != nil {
			return 0, fmt.Errorf("%s: %w", s.Kind, err)
		}
	}
	return i, nil
}

// optionArity is how many words at the start of rest are the action's
// options (for Arity); a word that is none ends them.
func (s Spec) optionArity(rest []string) int {
	i := 0
	for i < len(rest) {
		o, _, inline, ok := s.option(rest[i])
		if !ok {
			break
		}
		i++
		if o.Arg != "" && !inline && i < len(rest) {
			i++
		}
	}
	return i
}

// optionUsage is the options for a usage line: "[--mountpoint PATH]...".
func (s Spec) optionUsage() string {
	var out []string
	for _, o := range s.Options {
		if o.Refused != "" {
			continue
		}
		u := "--" + o.Name
		if o.Arg != "" {
			u += " " + o.Arg
		}
		u = "[" + u + "]"
		if o.Repeat {
			u += "..."
		}
		out = append(out, u)
	}
	return strings.Join(out, " ")
}

// OptionHelp describes the options for run -h: "--mountpoint PATH: only
// this filesystem ...".
func (s Spec) OptionHelp() []string {
	var out []string
	for _, o := range s.Options {
		if o.Refused != "" {
			continue
		}
		u := "--" + o.Name
		if o.Arg != "" {
			u += " " + o.Arg
		}
		out = append(out, u+": "+o.Help)
	}
	return out
}

// OptionFor is the option that selects mode ("--time" for clock's set),
// "" when none does (the mode without options).
func (s Spec) OptionFor(mode string) string {
	for _, o := range s.Options {
		a := Action{Kind: s.Kind}
		if o.set != nil && o.set(&a, "0") == nil && a.Mode == mode {
			return "--" + o.Name
		}
	}
	return ""
}

// optionsString is a's options as words.
func (a Action) optionsString() string {
	var out []string
	for _, o := range a.spec().Options {
		if o.show != nil {
			out = append(out, o.show(a)...)
		}
	}
	return strings.Join(out, " ")
}

// freezeSends is a freeze: of everything, or of the mountpoints given.
func freezeSends(a Action, _ time.Time) []Send {
	if len(a.Mountpoints) > 0 {
		return []Send{{Execute: "guest-fsfreeze-freeze-list", Arguments: map[string][]string{"mountpoints": a.Mountpoints}}}
	}
	return []Send{{Execute: "guest-fsfreeze-freeze"}}
}

func fstrimSends(a Action, _ time.Time) []Send {
	if a.Minimum > 0 {
		return []Send{{Execute: "guest-fstrim", Arguments: map[string]int64{"minimum": a.Minimum}}}
	}
	return []Send{{Execute: "guest-fstrim"}}
}

func clockSends(a Action, now time.Time) []Send {
	switch a.Mode {
	case ClockNow:
		return []Send{{Execute: "guest-set-time", Arguments: map[string]int64{"time": now.UnixNano()}}}
	case ClockSync:
		return []Send{{Execute: "guest-set-time"}}
	case ClockSet:
		return []Send{{Execute: "guest-set-time", Arguments: map[string]int64{"time": a.Seconds * int64(time.Second)}}}
	}
	return []Send{{Execute: "guest-get-time"}}
}

func clockQuestion(a Action, n int, _ time.Duration) string {
	if a.Mode == ClockSet {
		return fmt.Sprintf("Set the clock of %s to %s?", guestCount(n), time.Unix(a.Seconds, 0).UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("Set the clock of %s?", guestCount(n))
}

// actClock reads the guest clock, or sets it as the mode says.
func (s *session) actClock(ctx context.Context, ag *callAgent, a Action, r *Result) error {
	switch a.Mode {
	case ClockNow:
		return s.actSetTime(ctx, ag, a, r)
	case ClockSync:
		if err := ag.SetTime(ctx, nil); err != nil {
			return err
		}
		s.poke()
		r.Result = "clock set from the guest's hardware clock (RTC)"
		return nil
	case ClockSet:
		v := a.Seconds * int64(time.Second)
		if err := ag.SetTime(ctx, &v); err != nil {
			return err
		}
		s.poke()
		r.Clock = time.Unix(0, v).UTC()
		r.Result = "clock set to " + r.Clock.Format(time.RFC3339Nano)
		return nil
	}
	t0 := time.Now()
	v, err := ag.Time(ctx)
	if err != nil {
		return err
	}
	rtt := time.Since(t0)
	r.Clock = time.Unix(0, v).UTC()
	// The guest read its clock somewhere in the round trip: its middle is
	// the best guess of when.
	r.Skew = r.Clock.Sub(t0.Add(rtt / 2))
	r.Result = fmt.Sprintf("guest clock %s, %s", r.Clock.Format(time.RFC3339Nano), skewWords(r.Skew, rtt))
	return nil
}

// skewWords says how far the guest clock is off, to within the round trip.
func skewWords(skew, rtt time.Duration) string {
	within := (rtt / 2).Round(time.Microsecond)
	abs := skew.Abs().Round(time.Microsecond)
	switch {
	case abs <= within:
		return fmt.Sprintf("agrees with the host (within ±%s)", within)
	case skew > 0:
		return fmt.Sprintf("%s ahead of the host (±%s)", abs, within)
	}
	return fmt.Sprintf("%s behind the host (±%s)", abs, within)
}
