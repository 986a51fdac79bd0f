package agentclient

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
)

// Users and their keys: guest-ssh-get-authorized-keys,
// guest-ssh-add-authorized-keys and guest-ssh-remove-authorized-keys (qemu-ga
// 5.2, Unix guests; newer agents also on Windows) and guest-set-user-password
// (2.3). qemu-ga 7.2 has all four. Newer agents mark them with the schema
// feature "user-auth", which a guest admin can block as a group: they then
// answer "has been disabled" like any blocked command.

// UserAgent is what an agent offers for users and their keys. *Client
// implements it over any transport (the libvirt agent through
// QemuAgentCommand); fleet wraps it with timeouts and its command log.
type UserAgent interface {
	// AuthorizedKeys returns user's ~/.ssh/authorized_keys lines, as the
	// guest reports them (guest-controlled text).
	AuthorizedKeys(ctx context.Context, user string) ([]string, error)
	// AddAuthorizedKeys appends keys that are not there yet; reset
	// replaces the whole file with keys.
	AddAuthorizedKeys(ctx context.Context, user string, keys []string, reset bool) error
	// RemoveAuthorizedKeys removes keys; a key that is not there is no error.
	RemoveAuthorizedKeys(ctx context.Context, user string, keys []string) error
	// SetUserPassword sets user's password; crypted: password is already a
	// crypt(3) hash. The bytes go to the agent base64-encoded, as the
	// schema asks, and nowhere else.
	SetUserPassword(ctx context.Context, user string, password []byte, crypted bool) error
}

var _ UserAgent = (*Client)(nil)

// AuthorizedKeys is guest-ssh-get-authorized-keys's reply.
type AuthorizedKeys struct {
	Keys []string `json:"keys"`
}

// Argument shapes, members in schema order.
type (
	userArg struct {
		Username string `json:"username"`
	}
	keysArg struct {
		Username string   `json:"username"`
		Keys     []string `json:"keys"`
		Reset    *bool    `json:"reset,omitempty"`
	}
	passwordArg struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Crypted  bool   `json:"crypted"`
	}
)

func (c *Client) AuthorizedKeys(ctx context.Context, user string) ([]string, error) {
	var v AuthorizedKeys
	if err := c.call(ctx, "guest-ssh-get-authorized-keys", userArg{user}, &v); err != nil {
		return nil, err
	}
	return v.Keys, nil
}

func (c *Client) AddAuthorizedKeys(ctx context.Context, user string, keys []string, reset bool) error {
	if err := CheckKeys(keys); err != nil {
		return err
	}
	a := keysArg{Username: user, Keys: keys}
	if reset {
		a.Reset = &reset
	}
	return c.call(ctx, "guest-ssh-add-authorized-keys", a, nil)
}

func (c *Client) RemoveAuthorizedKeys(ctx context.Context, user string, keys []string) error {
	if err := CheckKeys(keys); err != nil {
		return err
	}
	return c.call(ctx, "guest-ssh-remove-authorized-keys", keysArg{Username: user, Keys: keys}, nil)
}

func (c *Client) SetUserPassword(ctx context.Context, user string, password []byte, crypted bool) error {
	if user == "" {
		return fmt.Errorf("set password: no user name")
	}
	return c.call(ctx, "guest-set-user-password", passwordArg{user, base64.StdEncoding.EncodeToString(password), crypted}, nil)
}

// CheckKeys refuses keys qemu-ga would write as something else: an empty
// key, or one with a line break (it would become two authorized_keys
// lines, the second one unseen by whoever checked the first).
func CheckKeys(keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("no keys given")
	}
	for i, k := range keys {
		if strings.TrimSpace(k) == "" {
			return fmt.Errorf("key %d is empty", i+1)
		}
		if strings.ContainsAny(k, "\r\n\x00") {
			return fmt.Errorf("key %d holds a line break or NUL: one key is one authorized_keys line", i+1)
		}
	}
	return nil
}

// ParseAuthorizedKeys reads keys from an authorized_keys-format file: one
// key per line; blank lines and # comments are skipped.
func ParseAuthorizedKeys(b []byte) ([]string, error) {
	var keys []string
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsRune(line, 0) {
			return nil, fmt.Errorf("a key line holds a NUL byte")
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys in the file (one key per line, in authorized_keys format)")
	}
	return keys, nil
}
