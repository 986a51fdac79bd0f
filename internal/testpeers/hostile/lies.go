package hostile

import (
	"encoding/base64"
	"encoding/json"
	"path"
	"strings"
)

// The lies peer's programs: guest-exec of a program with one of these base
// names makes its guest-exec-status say so.
const (
	// LieExitHuge exits with a code no status holds (2^40) and a negative
	// signal, both at once.
	LieExitHuge = "exit-huge"
	// LieExitOverflow exits with a code past 2^64.
	LieExitOverflow = "exit-overflow"
	// LieSignalZero is killed by signal 0 after exit code 1.
	LieSignalZero = "signal-zero"
	// LieNoStatus exits with neither an exit code nor a signal.
	LieNoStatus = "no-status"
	// LieBadBase64 prints out-data that is not base64.
	LieBadBase64 = "bad-base64"
	// LieNeverExits is never reported exited.
	LieNeverExits = "never-exits"
	// LiePIDHuge is started as pid 2^63-1.
	LiePIDHuge = "pid-huge"
	// LiePIDNegative is started as pid -1.
	LiePIDNegative = "pid-negative"
	// LieLate has its status answered after WithSlowDelay: past the
	// caller's wait, its output and exit arrive late.
	LieLate = "late"
	// LieEscapes prints Payload on stdout and stderr and exits 0.
	LieEscapes = "escapes"
)

// LiedKeys is the lies peer's guest-ssh-get-authorized-keys list, as JSON
// values: a key whose line break introduces a second, fake key, a key
// holding escapes, a 900 KiB key, and values that are no strings.
func LiedKeys() []any {
	return []any{
		"ssh-ed25519 AAAAreal alice@laptop\nssh-ed25519 AAAAfake attacker@evil",
		"ssh-ed25519 AAAAcr bob\rssh-rsa AAAAhidden mallory",
		"ssh-ed25519 AAAAesc" + Payload,
		"ssh-rsa " + strings.Repeat("A", 900<<10), // the reply stays inside guestdeck's 1 MiB
		42, nil, object{{"key", "x"}}, []any{"y"},
	}
}

// lieExec starts a lying program: its pid says which lie it tells.
func (p *Peer) lieExec(args json.RawMessage) (any, *agentError) {
	var a struct {
		Path string `json:"path"`
	}
	if json.Unmarshal(args, &a) != nil || a.Path == "" {
		return nil, &agentError{"GenericError", "Parameter 'path' is missing"}
	}
	lie := path.Base(a.Path)
	p.mu.Lock()
	defer p.mu.Unlock()
	var pid any = p.nextPID
	key := p.nextPID
	switch lie {
	case LiePIDHuge:
		pid, key = raw("9223372036854775807"), 1<<63-1
	case LiePIDNegative:
		pid, key = -1, -1
	default:
		p.nextPID++
	}
	if p.lies == nil {
		p.lies = map[int64]string{}
	}
	p.lies[key] = lie
	return object{{"pid", pid}}, nil
}

// lateStatus reports whether the status asked for in args is the late one.
func (p *Peer) lateStatus(args json.RawMessage) bool {
	var a struct {
		PID int64 `json:"pid"`
	}
	json.Unmarshal(args, &a)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lies[a.PID] == LieLate
}

// lieExecStatus answers for a lying program (once exited, it is forgotten).
func (p *Peer) lieExecStatus(args json.RawMessage) (any, *agentError) {
	var a struct {
		PID int64 `json:"pid"`
	}
	json.Unmarshal(args, &a)
	p.mu.Lock()
	lie, ok := p.lies[a.PID]
	if lie != LieNeverExits {
		delete(p.lies, a.PID)
	}
	p.mu.Unlock()
	if !ok {
		return nil, &agentError{"GenericError", "Invalid parameter 'pid'"}
	}
	b64 := base64.StdEncoding.EncodeToString
	switch lie {
	case LieExitHuge:
		return object{{"exitcode", raw("1099511627776")}, {"signal", -9}, {"exited", true}}, nil
	case LieExitOverflow:
		return object{{"exitcode", raw("99999999999999999999999")}, {"exited", true}}, nil
	case LieSignalZero:
		return object{{"exitcode", 1}, {"signal", 0}, {"exited", true}}, nil
	case LieNoStatus:
		return object{{"out-data", b64([]byte("ok\n"))}, {"exited", true}}, nil
	case LieBadBase64:
		return object{{"exitcode", 0}, {"out-data", "%%% not base64 %%%"}, {"err-data", b64([]byte("err\n"))}, {"exited", true}}, nil
	case LieNeverExits:
		return object{{"out-data", b64([]byte("still here\n"))}, {"exited", false}}, nil
	case LieEscapes:
		return execStatus(0, []byte(Payload), []byte(Payload)), nil
	}
	return execStatus(0, []byte("ok\n"), nil), nil
}

// authorizedKeys is the lies peer's key list.
func (p *Peer) authorizedKeys() any { return object{{"keys", LiedKeys()}} }
