package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Users and their keys as bulk actions:
//
//	password [--crypted] USER        guest-set-user-password
//	ssh-key add|set|remove USER FILE guest-ssh-add-authorized-keys (set: reset),
//	                                 guest-ssh-remove-authorized-keys
//	ssh-key list USER                guest-ssh-get-authorized-keys
//
// The password never travels in the action's words: the caller reads it (a
// prompt without echo, or standard input) into UserArgs.Secret, and every
// place an action is shown or recorded — its String, its Sends (dry run,
// audit log), the guest's command log — has SecretArg instead.

// The users-and-keys actions (see the Kinds in action.go; declared in the
// action table, actions.go).
const (
	ActPassword Kind = "password" // Users.User, Users.Secret, Users.Crypted
	ActSSHKey   Kind = "ssh-key"  // Mode: add, set, remove, list; Users.User, Users.Keys
)

// SSH key modes.
const (
	KeyAdd    = "add"    // append keys not there yet
	KeySet    = "set"    // replace the file with the keys (reset)
	KeyRemove = "remove" // remove the keys; a missing key is no error
	KeyList   = "list"   // read the keys
)

// SecretArg stands for a password in what is shown or recorded.
const SecretArg = "<secret>"

// maxKeyFile bounds a local authorized_keys file read for ssh-key: a few
// thousand keys.
const maxKeyFile = 1 << 20

// Secret is a password. It prints, formats and marshals as SecretArg, so a
// stray %v of an Action cannot show it.
type Secret []byte

func (Secret) String() string                 { return SecretArg }
func (Secret) GoString() string               { return SecretArg }
func (Secret) MarshalJSON() ([]byte, error)   { return []byte(`"` + SecretArg + `"`), nil }
func (s Secret) Format(f fmt.State, _ rune)   { io.WriteString(f, SecretArg) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(SecretArg), nil }

// UserArgs are the arguments of the users-and-keys actions.
type UserArgs struct {
	User    string
	Keys    []string // ssh-key add, set, remove: the key file's lines
	KeyFile string   // where Keys came from, as typed
	Secret  Secret   // password: set by the caller, never parsed from words
	Crypted bool     // password: Secret is a crypt(3) hash
}

// UserArity says how many words after name belong to a users-and-keys
// action, for a command line that ends the action where selectors begin;
// ok is false for other actions.
func UserArity(name string, rest []string) (n int, ok bool) {
	switch Kind(strings.ToLower(name)) {
	case ActPassword:
		if len(rest) > 0 && rest[0] == "--crypted" {
			return 2, true
		}
		return 1, true
	case ActSSHKey:
		if len(rest) > 0 && rest[0] == KeyList {
			return 2, true
		}
		return 3, true
	}
	return 0, false
}

// parseUsers reads the words after password or ssh-key. A key file is read
// here (at most 1 MiB, a regular file; ~/ expanded), so that what is
// confirmed, dry-run and audited are the keys that will be sent.
func (a *Action) parseUsers(rest []string) error {
	switch a.Kind {
	case ActPassword:
		if len(rest) > 0 && rest[0] == "--crypted" {
			a.Users.Crypted, rest = true, rest[1:]
		}
		if len(rest) != 1 || rest[0] == "" {
			return fmt.Errorf("password needs a user name: password [--crypted] USER (the password is asked for, never given on the command line)")
		}
		a.Users.User = rest[0]
	case ActSSHKey:
		if len(rest) == 0 {
			return fmt.Errorf("ssh-key needs add, set, remove or list: ssh-key add USER KEYFILE, ssh-key list USER")
		}
		a.Mode, rest = rest[0], rest[1:]
		switch a.Mode {
		case KeyList:
			if len(rest) != 1 || rest[0] == "" {
				return fmt.Errorf("ssh-key list needs a user name")
			}
			a.Users.User = rest[0]
		case KeyAdd, KeySet, KeyRemove:
			if len(rest) != 2 || rest[0] == "" || rest[1] == "" {
				return fmt.Errorf("ssh-key %s needs a user name and a local key file (authorized_keys format)", a.Mode)
			}
			a.Users.User, a.Users.KeyFile = rest[0], rest[1]
			keys, err := readKeyFile(rest[1])
			if err != nil {
				return err
			}
			a.Users.Keys = keys
		default:
			return fmt.Errorf("ssh-key mode %q: want add, set, remove or list", a.Mode)
		}
	}
	return a.validateUsers()
}

func readKeyFile(name string) ([]string, error) {
	if rest, ok := strings.CutPrefix(name, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			name = filepath.Join(home, rest)
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", name)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("key file %s: larger than %d bytes", name, maxKeyFile)
	}
	keys, err := agentclient.ParseAuthorizedKeys(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	return keys, nil
}

// validateUsers checks a users-and-keys action built by hand or parsed.
func (a Action) validateUsers() error {
	u := a.Users.User
	if u == "" || strings.ContainsAny(u, ":\n\x00") {
		return fmt.Errorf("%s: user name %q: want a name without ':' or line breaks", a.Kind, u)
	}
	switch a.Kind {
	case ActPassword:
		return nil
	case ActSSHKey:
		switch a.Mode {
		case KeyList:
			return nil
		case KeyAdd, KeySet, KeyRemove:
			if err := agentclient.CheckKeys(a.Users.Keys); err != nil {
				return fmt.Errorf("ssh-key %s: %w", a.Mode, err)
			}
			return nil
		}
		return fmt.Errorf("ssh-key mode %q: want add, set, remove or list", a.Mode)
	}
	return fmt.Errorf("not a users-and-keys action: %q", a.Kind)
}

// NeedsSecret reports whether the caller must read a password into
// a.Users.Secret before running a.
func (a Action) NeedsSecret() bool { return a.Kind == ActPassword }

// ListsData reports whether each guest's Result.Data is the answer, to be
// shown under a header per guest (read's content, ssh-key list's keys).
func (a Action) ListsData() bool {
	return a.Kind == ActRead || (a.Kind == ActSSHKey && a.Mode == KeyList)
}

// usersString is the action as typed, the password and the keys left out.
func (a Action) usersString() string {
	switch {
	case a.Kind == ActPassword && a.Users.Crypted:
		return "password --crypted " + a.Users.User
	case a.Kind == ActPassword:
		return "password " + a.Users.User
	case a.Mode == KeyList:
		return "ssh-key list " + a.Users.User
	}
	return fmt.Sprintf("ssh-key %s %s %s (%s)", a.Mode, a.Users.User, a.Users.KeyFile, plural(len(a.Users.Keys), "key"))
}

// usersSends is what the action sends. Public keys are not secret and are
// shown whole; the password is SecretArg.
func (a Action) usersSends() []Send {
	u := a.Users.User
	switch {
	case a.Kind == ActPassword:
		return []Send{{Execute: "guest-set-user-password", Arguments: map[string]any{"username": u, "password": SecretArg, "crypted": a.Users.Crypted}}}
	case a.Mode == KeyList:
		return []Send{{Execute: "guest-ssh-get-authorized-keys", Arguments: map[string]any{"username": u}}}
	case a.Mode == KeyRemove:
		return []Send{{Execute: "guest-ssh-remove-authorized-keys", Arguments: map[string]any{"username": u, "keys": a.Users.Keys}}}
	case a.Mode == KeySet:
		return []Send{{Execute: "guest-ssh-add-authorized-keys", Arguments: map[string]any{"username": u, "keys": a.Users.Keys, "reset": true}}}
	}
	return []Send{{Execute: "guest-ssh-add-authorized-keys", Arguments: map[string]any{"username": u, "keys": a.Users.Keys}}}
}

// userAct performs a users-and-keys action on one guest. Holds sem.
func (s *session) userAct(ctx context.Context, ag *callAgent, act Action, r *Result) error {
	u := act.Users.User
	switch {
	case act.Kind == ActPassword:
		if len(act.Users.Secret) == 0 {
			return fmt.Errorf("no password given (nothing was sent)")
		}
		if err := ag.SetUserPassword(ctx, u, act.Users.Secret, act.Users.Crypted); err != nil {
			return err
		}
		r.Result = "password of " + u + " set"
		if act.Users.Crypted {
			r.Result += " (crypted)"
		}
	case act.Mode == KeyList:
		keys, err := ag.AuthorizedKeys(ctx, u)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		n, broken := 0, 0
		for _, k := range keys {
			// One line per key: a line break inside a key (no
			// authorized_keys line holds one) would list a second key
			// the guest does not have, so it is written as \n or \r.
			if strings.ContainsAny(k, "\r\n") {
				k = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(k)
				broken++
			}
			// Listed for a person: a guest sending millions of keys is
			// cut at the read action's bound.
			if b.Len()+len(k)+1 > MaxReadData {
				break
			}
			b.WriteString(k)
			b.WriteByte('\n')
			n++
		}
		r.Data = b.Bytes()
		r.Result = fmt.Sprintf("%s of %s", plural(len(keys), "key"), u)
		if n < len(keys) {
			r.Result += fmt.Sprintf(" (the first %d shown)", n)
		}
		if broken > 0 {
			r.Result += fmt.Sprintf(" (%d with a line break, shown as \\n or \\r: no real key holds one)", broken)
		}
	case act.Mode == KeyRemove:
		if err := ag.RemoveAuthorizedKeys(ctx, u, act.Users.Keys); err != nil {
			return err
		}
		r.Result = fmt.Sprintf("removed %s from %s's authorized keys (where present)", plural(len(act.Users.Keys), "key"), u)
	default:
		if err := ag.AddAuthorizedKeys(ctx, u, act.Users.Keys, act.Mode == KeySet); err != nil {
			return err
		}
		if act.Mode == KeySet {
			r.Result = fmt.Sprintf("%s's authorized keys set to %s", u, plural(len(act.Users.Keys), "key"))
		} else {
			r.Result = fmt.Sprintf("added %s to %s's authorized keys", plural(len(act.Users.Keys), "key"), u)
		}
	}
	return nil
}

// users is the agent's users-and-keys half. Every Agent guestdeck dials
// (the socket client, the libvirt agent) has it.
func (c *callAgent) users() (agentclient.UserAgent, error) {
	if u, ok := c.a.(agentclient.UserAgent); ok {
		return u, nil
	}
	return nil, fmt.Errorf("this connection cannot send users-and-keys commands")
}

func (c *callAgent) AuthorizedKeys(ctx context.Context, user string) ([]string, error) {
	u, err := c.users()
	if err != nil {
		return nil, err
	}
	return do(c, ctx, "guest-ssh-get-authorized-keys", map[string]string{"username": user}, func(ctx context.Context) ([]string, error) {
		return u.AuthorizedKeys(ctx, user)
	})
}

func (c *callAgent) AddAuthorizedKeys(ctx context.Context, user string, keys []string, reset bool) error {
	u, err := c.users()
	if err != nil {
		return err
	}
	req := map[string]any{"username": user, "keys": len(keys), "reset": reset}
	return do0(c, ctx, "guest-ssh-add-authorized-keys", req, func(ctx context.Context) error { return u.AddAuthorizedKeys(ctx, user, keys, reset) })
}

func (c *callAgent) RemoveAuthorizedKeys(ctx context.Context, user string, keys []string) error {
	u, err := c.users()
	if err != nil {
		return err
	}
	req := map[string]any{"username": user, "keys": len(keys)}
	return do0(c, ctx, "guest-ssh-remove-authorized-keys", req, func(ctx context.Context) error { return u.RemoveAuthorizedKeys(ctx, user, keys) })
}

func (c *callAgent) SetUserPassword(ctx context.Context, user string, password []byte, crypted bool) error {
	u, err := c.users()
	if err != nil {
		return err
	}
	// As JSON with < and > as is, so the log reads <secret>.
	req := json.RawMessage(Send{Arguments: map[string]any{"username": user, "password": SecretArg, "crypted": crypted}}.argsJSON())
	return do0(c, ctx, "guest-set-user-password", req, func(ctx context.Context) error { return u.SetUserPassword(ctx, user, password, crypted) })
}

// argsJSON is the send's arguments as JSON, placeholders' < and > as is.
func (s Send) argsJSON() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s.Arguments); err != nil {
		return "{}"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// logRequest is a request line as the guest's command log may keep it: a
// password's request with the password replaced (the transport hands over
// the wire line as sent).
func logRequest(cmd string, req []byte) []byte {
	if cmd != "guest-set-user-password" {
		return req
	}
	s, _, err := RawSend(req)
	if err != nil {
		return []byte(`{"execute":"guest-set-user-password","arguments":"` + SecretArg + `"}`)
	}
	if args, ok := s.Arguments.(map[string]any); ok {
		if _, has := args["password"]; has {
			args["password"] = SecretArg
		}
	}
	return []byte(s.JSON())
}
