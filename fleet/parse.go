package fleet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseAction reads an action from words, as the action table declares
// them: "freeze", "shutdown reboot" (or "reboot"), "suspend ram" (or
// "suspend mem"), "vcpus offline 2,3" (ranges like 2-5 too), "read
// /etc/x" (or "cat /etc/x"), "write /tmp/x some text".
func ParseAction(args []string) (Action, error) {
	if len(args) == 0 {
		return Action{}, fmt.Errorf("no action given (want one of %s)", kindList())
	}
	s, fixed, ok := lookupWord(args[0])
	if !ok {
		return Action{}, fmt.Errorf("unknown action %q (want one of %s)", args[0], kindList())
	}
	a := Action{Kind: s.Kind, Mode: fixed}
	rest := args[1:]
	name := strings.ToLower(args[0])
	n, err := s.parseOptions(&a, rest)
	if err != nil {
		return Action{}, err
	}
	rest = rest[n:]
	if s.Args == NoArgs && a.Mode == "" {
		a.Mode = s.DefaultMode // clock without options reads
	}
	switch s.Args {
	case ModeArg:
		if fixed == "" {
			var err error
			if a.Mode, rest, err = s.takeMode(rest); err != nil {
				return Action{}, err
			}
		}
	case ModeIDsArg:
		if len(rest) < 2 {
			return Action{}, fmt.Errorf("%s needs %s and ids, e.g. %q", s.Kind, strings.ReplaceAll(s.modeList(), " or ", "|"), fmt.Sprintf("%s %s 2,3", s.Kind, s.Modes[len(s.Modes)-1].Name))
		}
		var err error
		if a.Mode, rest, err = s.takeMode(rest); err != nil {
			return Action{}, err
		}
		if a.IDs, err = parseIDs(strings.Join(rest, ",")); err != nil {
			return Action{}, err
		}
		rest = nil
	case PathArg:
		if len(rest) != 1 || rest[0] == "" {
			return Action{}, fmt.Errorf("%s needs exactly one guest path", name)
		}
		a.Path, rest = rest[0], nil
	case PathDataArg:
		if len(rest) == 0 || rest[0] == "" {
			return Action{}, fmt.Errorf("%s needs a guest path (and the content)", name)
		}
		a.Path = rest[0]
		if len(rest) > 1 {
			a.Data = []byte(strings.Join(rest[1:], " "))
		}
		rest = nil
	case CustomArgs:
		if err := s.parse(&a, rest); err != nil {
			return Action{}, err
		}
		rest = nil
	}
	if len(rest) > 0 {
		return Action{}, fmt.Errorf("%s takes no arguments, got %q", name, strings.Join(rest, " "))
	}
	return a, nil
}

// takeMode reads the mode from the first word, or the default when there
// is none (or it is no mode) and the action has one.
func (s Spec) takeMode(rest []string) (string, []string, error) {
	if len(rest) == 0 {
		if s.DefaultMode == "" {
			return "", nil, fmt.Errorf("%s needs a mode: %s", s.Kind, s.modeList())
		}
		return s.DefaultMode, rest, nil
	}
	m, ok := s.mode(rest[0])
	if !ok {
		return "", nil, fmt.Errorf("%s mode %q: want %s", s.Kind, rest[0], s.modeList())
	}
	return m.Name, rest[1:], nil
}

// parseIDs reads "2,3,5-7" (spaces and empty items ignored).
func parseIDs(s string) ([]int, error) {
	var ids []int
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("vcpu id %q: not a number", item)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 4096 {
				return nil, fmt.Errorf("vcpu range %q: want LOW-HIGH", item)
			}
		}
		for i := a; i <= b; i++ {
			if !slices.Contains(ids, i) {
				ids = append(ids, i)
			}
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("vcpus needs at least one id")
	}
	return ids, nil
}

// Mutating reports whether the action changes the guest; Readonly refuses
// it. The table decides (Spec.Mutating, but a mode that only looks).
func (a Action) Mutating() bool {
	if m, ok := a.modeSpec(); ok && m.LooksOnly {
		return false
	}
	return a.spec().Mutating
}

// Destructive reports whether the action interrupts the guest or loses data
// and so deserves a confirmation (Spec.Danger, raised by the mode: vCPUs
// offline).
func (a Action) Destructive() bool { return a.danger() >= Disruptive }

// Commands lists the agent commands the action needs: the names in Sends
// (but the optional ones).
func (a Action) Commands() []string {
	var names []string
	for _, s := range a.Sends(time.Time{}) {
		if !s.optional && !s.host && !slices.Contains(names, s.Execute) {
			names = append(names, s.Execute)
		}
	}
	return names
}

// String is the action as ParseAction reads it back (write data elided).
func (a Action) String() string {
	if o := a.optionsString(); o != "" {
		return a.baseString() + " " + o
	}
	return a.baseString()
}

// baseString is String without the options.
func (a Action) baseString() string {
	switch a.spec().Args {
	case ModeArg:
		if a.Mode == "" {
			return string(a.Kind)
		}
		return string(a.Kind) + " " + a.Mode
	case ModeIDsArg:
		ids := make([]string, len(a.IDs))
		for i, id := range a.IDs {
			ids[i] = strconv.Itoa(id)
		}
		return fmt.Sprintf("%s %s %s", a.Kind, a.Mode, strings.Join(ids, ","))
	case PathArg:
		return fmt.Sprintf("%s %s", a.Kind, a.Path)
	case PathDataArg:
		return fmt.Sprintf("%s %s (%d bytes)", a.Kind, a.Path, len(a.Data))
	case CustomArgs:
		return a.spec().str(a)
	}
	return string(a.Kind)
}

// Check returns "" when g can run the action, else why it is skipped: the
// agent lacks one of its commands, the guest is frozen (the agent refuses
// the command until thawed), or the guest admin disabled it.
func (a Action) Check(g *Guest) (skip string) {
	if g == nil {
		return "unknown guest"
	}
	if m := a.spec().machine; m != nil {
		return m(g) // asks the guest's host, not its agent
	}
	return checkCommands(g, a.Commands()...)
}

// validate catches actions built by hand rather than by ParseAction: the
// kind is in the table and the arguments fit its shape. An empty mode is
// allowed where the action has a default (the agent applies its own).
func (a Action) validate() error {
	s, ok := SpecOf(a.Kind)
	if !ok {
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	switch s.Args {
	case ModeArg:
		if a.Mode == "" && s.DefaultMode != "" {
			return nil
		}
		if m, ok := s.mode(a.Mode); !ok || m.Name != a.Mode {
			return fmt.Errorf("%s mode %q: want %s", a.Kind, a.Mode, s.modeList())
		}
	case ModeIDsArg:
		if m, ok := s.mode(a.Mode); !ok || m.Name != a.Mode || len(a.IDs) == 0 {
			return fmt.Errorf("%s needs %s and at least one id", a.Kind, strings.ReplaceAll(s.modeList(), " or ", "|"))
		}
	case PathArg, PathDataArg:
		if a.Path == "" {
			return fmt.Errorf("%s needs a path", a.Kind)
		}
	case CustomArgs:
		return s.check(a)
	}
	return nil
}
