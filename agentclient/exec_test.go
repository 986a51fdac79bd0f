package agentclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
)

func TestExecRequestJSON(t *testing.T) {
	cases := []struct {
		req  agentclient.ExecRequest
		want string
	}{
		{agentclient.ExecRequest{Path: "true"}, `{"path":"true"}`},
		{agentclient.ExecRequest{Path: "cat", InputData: "aGk=", CaptureOutput: true, Arg: []string{"-"}},
			`{"path":"cat","arg":["-"],"capture-output":true,"input-data":"aGk="}`},
		{agentclient.ExecRequest{Path: "sh", Capture: agentclient.CaptureSeparated}, `{"path":"sh","capture-output":true}`},
		{agentclient.ExecRequest{Path: "sh", Capture: agentclient.CaptureMerged}, `{"path":"sh","capture-output":"merged"}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.req)
		if err != nil || string(b) != c.want {
			t.Errorf("%+v: %s %v, want %s", c.req, b, err, c.want)
		}
	}
}

// TestRunExecSim runs the simulator's programs through RunExecWith: exit
// codes, both streams, a signal, stdin, the agent's 16 MiB cap, a cap of
// guestdeck's own, and a process that outlives the wait.
func TestRunExecSim(t *testing.T) {
	_, addr := startSim(t, nil)
	c := dialT(t, addr)
	sh := func(script string) agentclient.ExecRequest {
		return agentclient.ExecRequest{Path: "/bin/sh", Arg: []string{"-c", script}, CaptureOutput: true}
	}
	cases := []struct {
		name           string
		req            agentclient.ExecRequest
		keep           int
		code, signal   int
		stdout, stderr string
		outTrunc       bool
		outLen         int
	}{
		{name: "streams and code", req: sh("echo out; echo 'to err' >&2; exit 3"), code: 3, stdout: "out\n", stderr: "to err\n"},
		{name: "and-list", req: sh("false && echo no; echo yes"), stdout: "yes\n"},
		{name: "signal", req: sh("echo dying; kill -9 $$; echo never"), signal: 9, stdout: "dying\n"},
		{name: "signal by name", req: sh("kill -TERM $$"), signal: 15},
		{name: "stdin", req: agentclient.ExecRequest{Path: "/bin/sh", Arg: []string{"-c", "cat"}, CaptureOutput: true, InputData: "c2VjcmV0IGlucHV0"}, stdout: "secret input"},
		{name: "not found", req: sh("nope"), code: 127, stderr: "sh: 1: nope: not found\n"},
		{name: "agent cap", req: sh("head -c 17000000 /dev/zero"), outTrunc: true, outLen: agentclient.MaxExecOutput},
		{name: "own cap", req: sh("head -c 3000 /dev/zero"), keep: 1000, outTrunc: true, outLen: 1000},
		{name: "under own cap", req: sh("head -c 1000 /dev/zero"), keep: 1000, outLen: 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Generous: the 17 MB case under -race on a loaded machine takes seconds.
			res, err := agentclient.RunExecWith(ctxFor(t, 60*time.Second), c, tc.req, agentclient.ExecOptions{MaxOutput: tc.keep})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tc.code || res.Signal != tc.signal || res.OutTruncated != tc.outTrunc || res.ErrTruncated || res.PID == 0 {
				t.Errorf("got %+v", res)
			}
			if tc.outLen > 0 {
				if len(res.Stdout) != tc.outLen {
					t.Errorf("stdout %d bytes, want %d", len(res.Stdout), tc.outLen)
				}
			} else if string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr {
				t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
			}
		})
	}

	t.Run("reply over the cap", func(t *testing.T) {
		// Both streams past the cap: more than the reply may hold.
		_, err := agentclient.RunExecWith(ctxFor(t, 10*time.Second), c, sh("head -c 9000 /dev/zero; head -c 9000 /dev/zero >&2"), agentclient.ExecOptions{MaxOutput: 2000})
		if !errors.Is(err, agentclient.ErrTooLarge) {
			t.Fatalf("err %v, want ErrTooLarge", err)
		}
		// The stream resynced: the next call works.
		if err := c.Ping(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("still running", func(t *testing.T) {
		var started int64
		_, err := agentclient.RunExecWith(ctxFor(t, 300*time.Millisecond), c, sh("sleep 3600"),
			agentclient.ExecOptions{Started: func(pid int64) { started = pid }})
		pid, ok := agentclient.IsStillRunning(err)
		if !ok || pid == 0 || pid != started || !errors.Is(err, agentclient.ErrTimeout) {
			t.Fatalf("err %v (pid %d, started %d)", err, pid, started)
		}
		st, err := c.ExecStatus(ctxFor(t, 5*time.Second), pid)
		if err != nil || st.Exited {
			t.Fatalf("the process should still run in the guest: %+v %v", st, err)
		}
	})

	t.Run("input too large", func(t *testing.T) {
		in := strings.Repeat("A", 4*agentclient.MaxExecInput)
		_, err := agentclient.RunExecWith(ctxFor(t, 5*time.Second), c, agentclient.ExecRequest{Path: "cat", InputData: in}, agentclient.ExecOptions{})
		if err == nil || !strings.Contains(err.Error(), "over the 1 MiB") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestRunExecWindowsSim(t *testing.T) {
	_, addr := startSim(t, func(cfg *sim.Config) { *cfg = sim.WindowsConfig("win") })
	c := dialT(t, addr)
	res, err := agentclient.RunExecWith(ctxFor(t, 10*time.Second), c,
		agentclient.ExecRequest{Path: "cmd.exe", Arg: []string{"/c", "dir", `C:\Windows`}, CaptureOutput: true}, agentclient.ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !bytes.Contains(res.Stdout, []byte(" Directory of C:\\Windows\r\n")) || !bytes.Contains(res.Stdout, []byte(" win.ini\r\n")) {
		t.Errorf("dir: %+v\n%s", res, res.Stdout)
	}
	_, err = agentclient.RunExec(ctxFor(t, 10*time.Second), c, agentclient.ExecRequest{Path: "/bin/sh", Arg: []string{"-c", "true"}})
	if err == nil || !strings.Contains(err.Error(), "No such file or directory") {
		t.Errorf("sh on Windows: %v", err)
	}
}
