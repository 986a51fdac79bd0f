package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Users and their keys, kept where qemu-ga keeps them: authorized keys in
// the user's ~/.ssh/authorized_keys and passwords in /etc/shadow (the
// Windows guests keep no file for either), both in the guest's file tree,
// so guest-file-read and `cat` show what the commands did.

// simUser is one account of the simulated guest.
type simUser struct{ name, home string }

// users are the guest's accounts: those of /etc/passwd when its tree has
// one, else root and user on Linux, Administrator on Windows.
func (g *Guest) users() []simUser {
	t := g.files()
	if t.windows {
		return []simUser{{"Administrator", `C:\Users\Administrator`}}
	}
	if n, ok := t.nodes["/etc/passwd"]; ok && !n.mode.IsDir() {
		var us []simUser
		for line := range strings.SplitSeq(string(n.data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[0] != "" {
				us = append(us, simUser{f[0], f[5]})
			}
		}
		return us
	}
	return []simUser{{"root", "/root"}, {"user", "/home/user"}}
}

func (g *Guest) user(name string) (simUser, *agentclient.Error) {
	for _, u := range g.users() {
		if u.name == name {
			return u, nil
		}
	}
	// qemu-ga's words around glib's (g_unix_get_passwd_entry).
	return simUser{}, genericf("failed to lookup user '%s': getpwnam_r(): failed due to unknown user id (0)", name)
}

func (g *Guest) authKeysPath(u simUser) string {
	t := g.files()
	return t.join(t.join(u.home, ".ssh"), "authorized_keys")
}

// readKeys returns the user's authorized_keys lines; ok is false when the
// file does not exist.
func (g *Guest) readKeys(u simUser) (keys []string, ok bool) {
	n, ok := g.files().nodes[g.authKeysPath(u)]
	if !ok || n.mode.IsDir() {
		return nil, false
	}
	for line := range strings.SplitSeq(string(n.data), "\n") {
		if line != "" {
			keys = append(keys, line)
		}
	}
	return keys, true
}

// writeKeys writes the file as qemu-ga does: ~/.ssh 0700 and
// authorized_keys 0600, owned by the user, the keys joined by newlines
// (no newline after the last).
func (g *Guest) writeKeys(u simUser, keys []string) {
	t := g.files()
	now := time.Unix(0, g.clockNowLocked())
	ssh := t.join(u.home, ".ssh")
	t.mkParents(ssh, now)
	if d, ok := t.nodes[ssh]; !ok || !d.mode.IsDir() {
		t.nodes[ssh] = &node{mode: fs.ModeDir | 0o700, mtime: now}
	}
	t.nodes[g.authKeysPath(u)] = &node{data: []byte(strings.Join(keys, "\n")), mode: 0o600, mtime: now}
}

// checkKey is qemu-ga's sanity check of one key.
func checkKey(k string) *agentclient.Error {
	if k == "" || k[0] == '#' || strings.ContainsRune(k, '\n') {
		return genericf("invalid OpenSSH public key: '%s'", k)
	}
	return nil
}

func (g *Guest) cmdSSHGetKeys(a args) (any, *agentclient.Error) {
	u, err := g.user(a.str("username", ""))
	if err != nil {
		return nil, err
	}
	keys, ok := g.readKeys(u)
	if !ok {
		p := g.authKeysPath(u)
		return nil, genericf("failed to read '%s': Failed to open file “%s”: No such file or directory", p, p)
	}
	// qemu-ga (7.2) prepends each line to its reply list: the keys come
	// back last line first.
	out := make([]string, len(keys))
	for i, k := range keys {
		out[len(keys)-1-i] = k
	}
	return agentclient.AuthorizedKeys{Keys: out}, nil
}

func (g *Guest) cmdSSHAddKeys(a args) (any, *agentclient.Error) {
	u, err := g.user(a.str("username", ""))
	if err != nil {
		return nil, err
	}
	add, _ := a["keys"].([]string)
	for _, k := range add {
		if err := checkKey(k); err != nil {
			return nil, err
		}
	}
	var keys []string
	if reset, _ := a["reset"].(bool); !reset {
		keys, _ = g.readKeys(u)
	}
	for _, k := range add {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	g.writeKeys(u, keys)
	return struct{}{}, nil
}

func (g *Guest) cmdSSHRemoveKeys(a args) (any, *agentclient.Error) {
	u, err := g.user(a.str("username", ""))
	if err != nil {
		return nil, err
	}
	del, _ := a["keys"].([]string)
	for _, k := range del {
		if err := checkKey(k); err != nil {
			return nil, err
		}
	}
	keys, ok := g.readKeys(u)
	if !ok {
		return struct{}{}, nil // nothing to remove is no error
	}
	g.writeKeys(u, slices.DeleteFunc(keys, func(k string) bool { return slices.Contains(del, k) }))
	return struct{}{}, nil
}

// cmdSetPassword sets the user's /etc/shadow record as chpasswd would: a
// crypted password verbatim, a clear one hashed (SimHash; the simulator
// never stores a clear password).
func (g *Guest) cmdSetPassword(a args) (any, *agentclient.Error) {
	name := a.str("username", "")
	pw, ok := qbase64Decode(a.str("password", ""))
	if !ok {
		return nil, genericf("Base64 data contains invalid characters")
	}
	crypted, _ := a["crypted"].(bool)
	t := g.files()
	if t.windows {
		if crypted {
			return nil, genericf("This feature or command is not currently supported")
		}
		if _, err := g.user(name); err != nil {
			return nil, genericf("failed to set password: The user name could not be found.")
		}
		return struct{}{}, nil
	}
	if strings.ContainsAny(name, ":\n") {
		return nil, genericf("forbidden characters in username")
	}
	if !crypted && strings.ContainsRune(string(pw), '\n') {
		return nil, genericf("forbidden characters in raw password")
	}
	if _, err := g.user(name); err != nil {
		return nil, genericf("child process has failed to set user password")
	}
	hash := string(pw)
	if !crypted {
		hash = SimHash(name, string(pw))
	}
	g.setShadow(name, hash)
	return struct{}{}, nil
}

// setShadow replaces (or adds) user's /etc/shadow record, keeping the
// file's other records and its mode.
func (g *Guest) setShadow(user, hash string) {
	t := g.files()
	n, ok := t.nodes["/etc/shadow"]
	if !ok {
		t.mkParents("/etc/shadow", time.Unix(0, g.clockNowLocked()))
		n = &node{mode: 0o640, deny: true}
		t.nodes["/etc/shadow"] = n
	}
	days := time.Unix(0, g.clockNowLocked()).Unix() / 86400
	rec := fmt.Sprintf("%s:%s:%d:0:99999:7:::", user, hash, days)
	var lines []string
	found := false
	for line := range strings.SplitSeq(strings.TrimSuffix(string(n.data), "\n"), "\n") {
		if name, _, _ := strings.Cut(line, ":"); name == user {
			line, found = rec, true
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	if !found {
		lines = append(lines, rec)
	}
	// A new node: open handles keep reading the old contents, as with the
	// agent's rename of a new /etc/shadow into place.
	t.nodes["/etc/shadow"] = &node{data: []byte(strings.Join(lines, "\n") + "\n"), mode: n.mode, mtime: time.Unix(0, g.clockNowLocked()), deny: n.deny, uid: n.uid, gid: n.gid}
}

// SimHash is the simulator's stand-in for crypt(3) of a clear password:
// "$gdsim$" and a SHA-256 of the user and password in hex. It is no real
// crypt scheme; tests compare a shadow record with it.
func SimHash(user, password string) string {
	sum := sha256.Sum256([]byte(user + ":" + password))
	return "$gdsim$" + hex.EncodeToString(sum[:])
}

// Shadow returns user's /etc/shadow password field ("" when there is none),
// for tests; the agent itself cannot read the file (it is Deny).
func (g *Guest) Shadow(user string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.files().nodes["/etc/shadow"]
	if !ok {
		return ""
	}
	for line := range strings.SplitSeq(string(n.data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 2 && f[0] == user {
			return f[1]
		}
	}
	return ""
}

// userCommands are the users-and-keys commands' arguments and handlers,
// for the dispatch table.
func userCommands() map[string]command {
	keys := []field{{name: "username", typ: tStr}, {name: "keys", typ: tStrList}}
	return map[string]command{
		"guest-ssh-get-authorized-keys":    {fields: []field{{name: "username", typ: tStr}}, run: (*Guest).cmdSSHGetKeys},
		"guest-ssh-add-authorized-keys":    {fields: append(keys, field{name: "reset", typ: tBool, opt: true}), run: (*Guest).cmdSSHAddKeys},
		"guest-ssh-remove-authorized-keys": {fields: keys, run: (*Guest).cmdSSHRemoveKeys},
		"guest-set-user-password":          {fields: []field{{name: "username", typ: tStr}, {name: "password", typ: tStr}, {name: "crypted", typ: tBool}}, run: (*Guest).cmdSetPassword},
	}
}
