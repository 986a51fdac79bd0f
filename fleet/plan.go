package fleet

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

// Send is one agent command an action sends, with its arguments as they go
// on the wire. What must never be recorded or shown (file contents,
// passwords, a process's input and environment values) is replaced by a
// placeholder in angle brackets that gives its size, and so is what only
// the agent's earlier reply decides (a file handle).
type Send struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	// optional: sent, but the action does not need the agent to have it
	// (the check after a thaw), so the capability check leaves it out.
	optional bool
	// host: not an agent command but a call to the guest's libvirt host,
	// named by its API (virDomainPMWakeup): wake and start (domain.go).
	host bool
}

// Placeholders in a Send's arguments.
const (
	// HandleArg stands for the handle guest-file-open returns.
	HandleArg = "<handle from guest-file-open>"
	// NotRecorded stands for a secret whose size says nothing.
	NotRecorded = "<not recorded>"
)

// JSON is the send as one line of JSON (placeholders' < and > as is).
func (s Send) JSON() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		// Arguments are built here from strings, numbers and slices of
		// them, or decoded from JSON: they always encode.
		return fmt.Sprintf(`{"execute":%q}`, s.Execute)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// bytesArg is the placeholder for n bytes that are not recorded.
func bytesArg(n int64) string { return fmt.Sprintf("<%d bytes, not recorded>", n) }

// Sends is what the action sends to a guest that can run it, in order,
// from the action table: the one home of that fact (Commands, the dry run
// and the audit log read it). now is the host clock that settime sends;
// the real action reads the clock again as it sends, so its time is later
// by however long the wait was.
func (a Action) Sends(now time.Time) []Send {
	if s := a.spec(); s.sends != nil {
		return s.sends(a, now)
	}
	return nil
}

// WriteSends is what writing size bytes to path sends (put, the write
// action); size < 0 means not known in advance (standard input). The
// content is never included, only its size.
func WriteSends(path string, size int64) []Send {
	open := Send{Execute: "guest-file-open", Arguments: map[string]string{"path": path, "mode": "w"}}
	cl := Send{Execute: "guest-file-close", Arguments: map[string]string{"handle": HandleArg}}
	chunk := int64(agentclient.DefaultWriteChunk)
	var write map[string]any
	switch {
	case size == 0:
		// Opening with "w" empties the file; there is nothing to write.
		return []Send{open, cl}
	case size < 0:
		write = map[string]any{"handle": HandleArg, "buf-b64": "<the bytes read from the source, not recorded>"}
	case size <= chunk:
		write = map[string]any{"handle": HandleArg, "buf-b64": bytesArg(size), "count": size}
	default:
		n := (size + chunk - 1) / chunk
		write = map[string]any{"handle": HandleArg, "buf-b64": fmt.Sprintf("<%d bytes in %d writes of up to %d, not recorded>", size, n, chunk)}
	}
	return []Send{open, {Execute: "guest-file-write", Arguments: write}, cl}
}

// Plan is what the action would send to g, or why it would be skipped: the
// capability check Run makes before sending anything.
func (a Action) Plan(g *Guest, now time.Time) (sends []Send, skip string) {
	if why := a.Check(g); why != "" {
		return nil, why
	}
	return a.Sends(now), ""
}

// secretArgs are argument members whose values are never recorded: file
// contents, passwords, a process's standard input. env is handled apart
// (names kept, values not).
var secretArgs = []string{"buf-b64", "password", "input-data"}

// RawSend is a raw request (guestdeck agent GUEST JSON) as a Send, with
// secrets replaced by placeholders (see Send); hid reports whether any
// was. Numbers keep their exact text. It fails when req is not one JSON
// object with an "execute" string.
func RawSend(req []byte) (s Send, hid bool, err error) {
	var top struct {
		Execute   string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(req, &top); err != nil {
		return Send{}, false, fmt.Errorf("not a JSON request: %w", err)
	}
	if top.Execute == "" {
		return Send{}, false, fmt.Errorf(`no "execute" member`)
	}
	s = Send{Execute: top.Execute}
	if len(bytes.TrimSpace(top.Arguments)) == 0 || string(bytes.TrimSpace(top.Arguments)) == "null" {
		return s, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(top.Arguments))
	dec.UseNumber()
	var args any
	if err := dec.Decode(&args); err != nil {
		return Send{}, false, fmt.Errorf("arguments: %w", err)
	}
	obj, ok := args.(map[string]any)
	if !ok {
		// Not an object: the agent refuses it; nothing in it is named secret.
		s.Arguments = args
		return s, false, nil
	}
	for _, k := range secretArgs {
		v, ok := obj[k]
		if !ok {
			continue
		}
		hid = true
		str, isStr := v.(string)
		switch {
		case k == "password" || !isStr:
			obj[k] = NotRecorded
		default:
			n := int64(len(str))
			if b, err := base64.StdEncoding.DecodeString(str); err == nil {
				n = int64(len(b))
			}
			obj[k] = bytesArg(n)
		}
	}
	if env, ok := obj["env"].([]any); ok {
		for i, e := range env {
			name, _, _ := strings.Cut(fmt.Sprint(e), "=")
			env[i] = name + "=" + NotRecorded
		}
		hid = hid || len(env) > 0
	} else if _, ok := obj["env"]; ok {
		obj["env"], hid = NotRecorded, true
	}
	s.Arguments = obj
	return s, hid, nil
}

// AuditSends is sends as the audit log holds them.
func AuditSends(sends []Send) []json.RawMessage {
	if len(sends) == 0 {
		return nil
	}
	out := make([]json.RawMessage, len(sends))
	for i, s := range sends {
		out[i] = json.RawMessage(s.JSON())
	}
	return out
}

// AuditPlan is the guests of an audit intent or dry run of a on gs: each
// with what it will be sent ("pending", or "would-send" in a dry run) or
// why it is skipped. Guests are named as resolved, with their addresses.
func AuditPlan(a Action, gs []*Guest, phase string, now time.Time) []audit.Guest {
	send := "pending"
	if phase == audit.DryRun {
		send = "would-send"
	}
	out := make([]audit.Guest, 0, len(gs))
	for _, g := range gs {
		sends, skip := a.Plan(g, now)
		ag := audit.Guest{Name: g.Name, Address: g.Address, Result: send, Sends: AuditSends(sends)}
		if skip != "" {
			ag.Result, ag.Detail = "skipped", skip
		}
		out = append(out, ag)
	}
	return out
}

// AuditResults is the guests of an audit outcome: ok, failed or skipped,
// with the summary, error or skip reason. address names each guest's
// address (nil: none recorded).
func AuditResults(rs []Result, address func(guest string) string) []audit.Guest {
	out := make([]audit.Guest, 0, len(rs))
	for _, r := range rs {
		ag := audit.Guest{Name: r.Guest, Result: "ok", Detail: r.Result, NotStarted: r.NotStarted}
		switch {
		case r.Skipped:
			ag.Result, ag.Detail = "skipped", r.Err
		case !r.OK:
			ag.Result, ag.Detail = "failed", r.Err
		}
		if address != nil {
			ag.Address = address(r.Guest)
		}
		out = append(out, ag)
	}
	return out
}

// Auditor is an audit log: where the dashboard records its actions and the
// fleet the ones it takes on its own (the watchdog's automatic thaw).
// Package audit's *Log is one.
type Auditor interface {
	NewID() string
	Append(audit.Entry) error
	Path() string
}

// AuditError says that the log at path cannot be written, naming the file
// once: the words that refuse an action for it.
func AuditError(path string, err error) error {
	msg := err.Error()
	if !strings.Contains(msg, path) {
		msg = path + ": " + msg
	}
	return fmt.Errorf("cannot write the audit log (%s)", msg)
}

// autoThaw is a thaw the fleet does on its own (why: the watchdog's
// deadline, an orphaned freeze), audited: the intent before it is sent and
// the outcome after. A log that cannot be written never stops a thaw
// guestdeck owes (a guest left frozen is the worse outcome): the failure
// goes to the guest's command log.
func (s *session) autoThaw(ctx context.Context, why string) Result {
	al := s.f.opts.Audit
	if al == nil {
		return s.thawOwed(ctx, why)
	}
	e := audit.Entry{ID: al.NewID(), Phase: audit.Intent, Source: audit.SourceAuto, Action: string(ActThaw) + " (" + why + ")",
		Guests: []audit.Guest{{Name: s.target().Name, Address: s.target().Address, Result: "pending",
			Sends: AuditSends(thawSends())}}}
	s.appendAudit(al, e)
	r := s.thawOwed(ctx, why)
	e.Phase, e.Time, e.Guests = audit.Outcome, time.Time{}, AuditResults([]Result{r}, func(string) string { return s.target().Address })
	s.appendAudit(al, e)
	return r
}

func (s *session) appendAudit(al Auditor, e audit.Entry) {
	if err := al.Append(e); err != nil {
		s.logCall(time.Now(), "audit", e.Phase, nil, AuditError(al.Path(), err))
	}
}
