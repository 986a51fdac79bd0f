package agentclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// Messages as libvirt 9.0 words them (observed against the real daemon).
func TestClassifyLibvirt(t *testing.T) {
	frozen := "internal error: unable to execute QEMU agent command 'guest-get-time': Command guest-get-time has been disabled: the agent is in frozen state"
	cases := []struct {
		name string
		err  error
		is   []func(error) bool
		not  []func(error) bool
		desc string // the agent's own text, when it answered
	}{
		{"frozen", libvirt.Error{Code: 1, Message: frozen},
			[]func(error) bool{IsFrozen}, []func(error) bool{IsDisabled, IsUnknown, IsTimeout, IsConnLost},
			"Command guest-get-time has been disabled: the agent is in frozen state"},
		{"disabled", libvirt.Error{Code: 1, Message: "internal error: unable to execute QEMU agent command 'guest-exec': Command guest-exec has been disabled"},
			[]func(error) bool{IsDisabled}, []func(error) bool{IsFrozen, IsUnknown}, "Command guest-exec has been disabled"},
		{"unknown", libvirt.Error{Code: 1, Message: "internal error: unable to execute QEMU agent command 'guest-x': The command guest-x has not been found"},
			[]func(error) bool{IsUnknown}, []func(error) bool{IsDisabled, IsFrozen}, "The command guest-x has not been found"},
		{"bad args", libvirt.Error{Code: 1, Message: "internal error: unable to execute QEMU agent command 'guest-ping': Parameter 'x' is unexpected"},
			[]func(error) bool{IsInvalidArgs}, []func(error) bool{IsUnknown, IsTimeout}, "Parameter 'x' is unexpected"},
		{"hung agent", libvirt.Error{Code: 86, Message: "Guest agent is not responding: Guest agent not available for now"},
			[]func(error) bool{IsSilent, IsTimeout}, []func(error) bool{IsConnLost, IsFrozen}, ""},
		{"agent command timeout", libvirt.Error{Code: 112, Message: "The guest agent command timed out"},
			[]func(error) bool{IsTimeout}, []func(error) bool{IsSilent}, ""},
		{"domain not running", libvirt.Error{Code: 55, Message: "Requested operation is not valid: domain is not running"},
			[]func(error) bool{IsSilent}, []func(error) bool{IsTimeout, IsConnLost}, ""},
		{"no such domain", libvirt.Error{Code: 42, Message: "Domain not found: no domain with matching name 'x'"},
			[]func(error) bool{IsConnLost}, nil, ""},
		{"driver lacks the call", libvirt.Error{Code: 3, Message: "this function is not supported by the connection driver: virDomainQemuAgentCommand"},
			[]func(error) bool{IsUnknown}, []func(error) bool{IsConnLost, IsTimeout}, "The command guest-x has not been found: the libvirt driver does not support it"},
		{"driver lacks a flag", libvirt.Error{Code: 8, Message: "unsupported flags (0x2) in function testDomainGetHostname"},
			[]func(error) bool{IsUnknown}, nil, "The command guest-x has not been found: the libvirt driver does not support it"},
		{"vcpu 0", libvirt.Error{Code: 84, Message: "Operation not supported: vCPU '0' is not offlinable"},
			nil, []func(error) bool{IsUnknown, IsTimeout, IsConnLost, IsFrozen}, ""},
		{"connection dropped", libvirt.ErrInterrupted,
			[]func(error) bool{IsConnLost}, []func(error) bool{IsTimeout}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := &OpError{Addr: "libvirt:h/d", Command: "guest-x", Err: classifyLibvirt("guest-x", c.err)}
			for i, is := range c.is {
				if !is(err) {
					t.Errorf("predicate %d false for %v", i, err)
				}
			}
			for i, is := range c.not {
				if is(err) {
					t.Errorf("negative predicate %d true for %v", i, err)
				}
			}
			if !strings.Contains(err.Error(), c.err.Error()) || !strings.Contains(err.Error(), "libvirt:h/d") {
				t.Errorf("message %q lost libvirt's text or the address", err)
			}
			var le libvirt.Error
			if _, isLV := c.err.(libvirt.Error); isLV && (!errors.As(err, &le) || le.Message != c.err.Error()) {
				t.Errorf("libvirt.Error not reachable with errors.As: %v", err)
			}
			if ae, ok := agentError(err); ok != (c.desc != "") || (ok && ae.Desc != c.desc) {
				t.Errorf("agent error %+v, want desc %q", ae, c.desc)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]string{
		"": "[]", "0": "[0]", "0-1": "[0 1]", "0-3,^2": "[0 1 3]", "1,3-4": "[1 3 4]",
	} {
		set, err := parseCPUList(in)
		if err != nil || fmt.Sprint(sortedIDs(set)) != want {
			t.Errorf("parseCPUList(%q) = %v, %v; want %s", in, sortedIDs(set), err, want)
		}
	}
	for _, bad := range []string{"x", "3-1", "-1", "0-99999999", "1,,2"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
	if got := formatCPUList([]int{1, 3}); got != "1,3" {
		t.Errorf("formatCPUList = %q", got)
	}
}

func TestRawTimeout(t *testing.T) {
	if got := rawTimeout(context.Background()); got != -1 {
		t.Errorf("no deadline: %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if got := rawTimeout(ctx); got != 3 {
		t.Errorf("2.5s: %d", got)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	if got := rawTimeout(ctx2); got != 1 {
		t.Errorf("1ms: %d", got)
	}
}

// TestLibvirtAgentTestDriver drives LibvirtAgent against a real libvirtd with
// the test driver, which implements some agent APIs (freeze/thaw, time,
// fsinfo, interfaces) and not others (QemuAgentCommand, guest vCPUs, guest
// info). The QEMU driver with a real guest is covered in fleet's tests.
func TestLibvirtAgentTestDriver(t *testing.T) {
	lt := testpeers.StartLibvirtTest(t)
	lv := lt.Connect(t)
	dom, err := lv.DomainLookupByName("test") // the default domain has a NIC
	if err != nil {
		t.Fatal(err)
	}
	a := NewLibvirt(lv, dom, "libvirt:t/test")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if n, err := a.Freeze(ctx); err != nil || n < 1 {
		t.Fatalf("freeze: %d %v", n, err)
	}
	if n, err := a.Thaw(ctx); err != nil || n < 1 {
		t.Fatalf("thaw: %d %v", n, err)
	}
	if ns, err := a.Time(ctx); err != nil || ns <= 0 {
		t.Fatalf("time: %d %v", ns, err)
	}
	if err := a.SetTime(ctx, nil); err != nil {
		t.Fatalf("settime sync: %v", err)
	}
	fs, err := a.FSInfo(ctx) // GetGuestInfo unsupported: falls back to GetFSInfo
	if err != nil || len(fs) == 0 || fs[0].Mountpoint == "" {
		t.Fatalf("fsinfo: %+v %v", fs, err)
	}
	// What the driver lacks reads as a command the agent does not have.
	// Interfaces go through QemuAgentCommand (for their statistics), which
	// the test driver lacks; TestLibvirtQEMU reads them from a real agent.
	for name, err := range map[string]error{
		"ping":       a.Ping(ctx),
		"interfaces": func() error { _, err := a.Interfaces(ctx); return err }(),
		"vcpus":      func() error { _, err := a.VCPUs(ctx); return err }(),
		"users":      func() error { _, err := a.Users(ctx); return err }(),
	} {
		if !IsUnknown(err) || !strings.Contains(err.Error(), "libvirt:t/test") {
			t.Errorf("%s: %v (IsUnknown %v)", name, err, IsUnknown(err))
		}
	}
	if _, err := a.Raw(ctx, []byte(`not json`)); err == nil {
		t.Error("raw accepted garbage")
	}
	if err := a.Shutdown(ctx, "sideways"); err == nil {
		t.Error("bad shutdown mode accepted")
	}

	// A cancelled context returns at once, before libvirt is asked.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := a.Time(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Time(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}

	// The connection going away fails calls as a lost connection.
	b := NewLibvirt(lv, dom, "libvirt:t/test")
	if err := lv.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Time(ctx); !IsConnLost(err) {
		t.Errorf("after disconnect: %v", err)
	}
}
