package agentclient_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// fakeTransport answers at the request -> reply level; file-helper tests use
// it to script failures the real agent will not produce on demand.
type fakeTransport struct {
	mu    sync.Mutex
	calls []string
	fn    func(ctx context.Context, name string, args json.RawMessage) (any, error)
}

func (f *fakeTransport) Call(ctx context.Context, name string, args any) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, &agentclient.OpError{Addr: "fake:", Command: name, Err: agentclient.ErrTimeout}
	}
	// Only calls made with a live context count: a close sent with a dead
	// one would never reach the agent.
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
	a, _ := json.Marshal(args)
	v, err := f.fn(ctx, name, a)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
func (f *fakeTransport) Addr() string { return "fake:" }
func (f *fakeTransport) Close() error { return nil }
func (f *fakeTransport) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

// fileAgent serves one file of content through the fake, with hooks.
func fileAgent(content []byte, onRead func(n int) error) *fakeTransport {
	pos := 0
	return &fakeTransport{fn: func(ctx context.Context, name string, args json.RawMessage) (any, error) {
		switch name {
		case "guest-file-open":
			return 1000, nil
		case "guest-file-close":
			return map[string]any{}, nil
		case "guest-file-seek":
			var a struct{ Offset int }
			json.Unmarshal(args, &a)
			pos = a.Offset
			return agentclient.FileSeek{Position: int64(pos)}, nil
		case "guest-file-read":
			var a struct{ Count int }
			json.Unmarshal(args, &a)
			if onRead != nil {
				if err := onRead(pos); err != nil {
					return nil, err
				}
			}
			end := min(pos+a.Count, len(content))
			b := content[pos:end]
			pos = end
			return agentclient.FileRead{Count: len(b), BufB64: base64.StdEncoding.EncodeToString(b), EOF: pos == len(content)}, nil
		}
		return nil, fmt.Errorf("unexpected %s", name)
	}}
}

func TestReadFileAlwaysClosesTheHandle(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 100)
	agentErr := &agentclient.Error{Class: "GenericError", Desc: "read failed"}
	tests := []struct {
		name    string
		onRead  func(cancel context.CancelFunc) func(pos int) error
		w       io.Writer
		wantErr func(error) bool
	}{
		{"success", nil, io.Discard, func(err error) bool { return err == nil }},
		{"agent error mid-file", func(context.CancelFunc) func(int) error {
			return func(pos int) error {
				if pos >= 300 {
					return agentErr
				}
				return nil
			}
		}, io.Discard, func(err error) bool { return errors.Is(err, agentErr) }},
		{"cancelled mid-file", func(cancel context.CancelFunc) func(int) error {
			return func(pos int) error {
				if pos >= 300 {
					cancel()
				}
				return nil
			}
		}, io.Discard, func(err error) bool { return err != nil }},
		{"destination fails", nil, failWriter{}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "destination") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var onRead func(int) error
			if tt.onRead != nil {
				onRead = tt.onRead(cancel)
			}
			ft := fileAgent(content, onRead)
			_, err := agentclient.ReadFile(ctx, agentclient.New(ft), "/f", tt.w, agentclient.FileOptions{Chunk: 100})
			if !tt.wantErr(err) {
				t.Fatalf("ReadFile: %v", err)
			}
			if n := ft.count("guest-file-close"); n != 1 {
				t.Fatalf("guest-file-close sent %d times, want 1", n)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestReadFileRangeAndProgress(t *testing.T) {
	content := []byte(strings.Repeat("abcdefghij", 50))
	ft := fileAgent(content, nil)
	var b bytes.Buffer
	var last, total int64
	n, err := agentclient.ReadFileRange(context.Background(), agentclient.New(ft), "/f", 45, 120, &b,
		agentclient.FileOptions{Chunk: 50, Progress: func(d, tot int64) { last, total = d, tot }})
	if err != nil || n != 120 || !bytes.Equal(b.Bytes(), content[45:165]) {
		t.Fatalf("ReadFileRange = %d, %v, %q", n, err, b.Bytes())
	}
	if last != 120 || total != 120 || ft.count("guest-file-read") != 3 {
		t.Errorf("progress %d/%d after %d reads", last, total, ft.count("guest-file-read"))
	}
}

func TestWriteFileShortWritesAndCloseError(t *testing.T) {
	var got bytes.Buffer
	closeErr := &agentclient.Error{Class: "GenericError", Desc: "flush failed"}
	ft := &fakeTransport{fn: func(ctx context.Context, name string, args json.RawMessage) (any, error) {
		switch name {
		case "guest-file-open":
			return 1000, nil
		case "guest-file-write":
			var a struct {
				Buf string `json:"buf-b64"`
			}
			json.Unmarshal(args, &a)
			b, _ := base64.StdEncoding.DecodeString(a.Buf)
			b = b[:(len(b)+1)/2] // the agent takes half of each write
			got.Write(b)
			return agentclient.FileWrite{Count: len(b)}, nil
		case "guest-file-close":
			return nil, closeErr
		}
		return nil, fmt.Errorf("unexpected %s", name)
	}}
	data := []byte(strings.Repeat("xyz", 1000))
	n, err := agentclient.WriteFile(context.Background(), agentclient.New(ft), "/f", bytes.NewReader(data), agentclient.FileOptions{Chunk: 512})
	if n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("WriteFile wrote %d bytes (%d arrived), want %d", n, got.Len(), len(data))
	}
	if !errors.Is(err, closeErr) {
		t.Fatalf("WriteFile: %v, want the close error", err)
	}
}

func TestListDir(t *testing.T) {
	exit := func(code int) *int { return &code }
	tests := []struct {
		name    string
		status  agentclient.ExecStatus
		want    []string
		wantErr string
	}{
		{"ok", agentclient.ExecStatus{Exited: true, ExitCode: exit(0),
			OutData: []byte("41ed 4096 1700000000\n.\x0041ed 4096 1700000000\n..\x0081a4 12 1700000000\na b.txt\x00")},
			[]string{"..", "a b.txt"}, ""},
		{"missing dir", agentclient.ExecStatus{Exited: true, ExitCode: exit(2),
			ErrData: []byte("sh: cd: can't cd to /nope\n")},
			nil, "list /nope: exit status 2: sh: cd: can't cd to /nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			polls := 0
			ft := &fakeTransport{fn: func(ctx context.Context, name string, args json.RawMessage) (any, error) {
				switch name {
				case "guest-exec":
					return map[string]int{"pid": 42}, nil
				case "guest-exec-status":
					if polls++; polls < 3 {
						return agentclient.ExecStatus{}, nil
					}
					return tt.status, nil
				}
				return nil, fmt.Errorf("unexpected %s", name)
			}}
			dir := "/data"
			if tt.wantErr != "" {
				dir = "/nope"
			}
			ents, err := agentclient.ListDir(context.Background(), agentclient.New(ft), dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ListDir: %v, want %q", err, tt.wantErr)
				}
				return
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name)
			}
			if err != nil || fmt.Sprint(names) != fmt.Sprint(tt.want) || polls != 3 {
				t.Fatalf("ListDir = %v, %v after %d polls", names, err, polls)
			}
		})
	}
	// A guest that never finishes: the context bounds the polling.
	ft := &fakeTransport{fn: func(ctx context.Context, name string, args json.RawMessage) (any, error) {
		if name == "guest-exec" {
			return map[string]int{"pid": 1}, nil
		}
		return agentclient.ExecStatus{}, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := agentclient.ListDir(ctx, agentclient.New(ft), "/slow"); !agentclient.IsTimeout(err) {
		t.Fatalf("ListDir of a process that never exits: %v, want timeout", err)
	}
}

// failingReader fails on its first read, as a directory or an unreadable
// local file does.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("is a directory") }

// TestWriteFileSourceFailsFirst: a source that fails before any byte must
// leave the guest's file as it was; opening it for writing would empty it.
func TestWriteFileSourceFailsFirst(t *testing.T) {
	g, addr := startSim(t, nil)
	c, err := agentclient.Dial(ctxFor(t, 5*time.Second), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const path = "/home/user/notes.txt"
	var before bytes.Buffer
	if _, err := agentclient.ReadFile(ctxFor(t, 5*time.Second), c, path, &before, agentclient.FileOptions{}); err != nil || before.Len() == 0 {
		t.Fatalf("read %s: %v (%d bytes)", path, err, before.Len())
	}
	opens := g.Calls("guest-file-open")
	_, err = agentclient.WriteFile(ctxFor(t, 5*time.Second), c, path, failingReader{}, agentclient.FileOptions{})
	if err == nil || !strings.Contains(err.Error(), "is a directory") || !strings.Contains(err.Error(), path) {
		t.Fatalf("WriteFile from a failing source: %v; want an error naming %s and the cause", err, path)
	}
	if n := g.Calls("guest-file-open") - opens; n != 0 {
		t.Errorf("the guest's file was opened %d times for a source that failed at once", n)
	}
	var after bytes.Buffer
	if _, err := agentclient.ReadFile(ctxFor(t, 5*time.Second), c, path, &after, agentclient.FileOptions{}); err != nil || !bytes.Equal(after.Bytes(), before.Bytes()) {
		t.Errorf("after a failed write %s is %q (%v), was %q", path, after.String(), err, before.String())
	}
}
