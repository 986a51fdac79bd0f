package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// TestUsersAndKeys drives the users-and-keys commands through the real
// client: keys land in ~/.ssh/authorized_keys (so guest-file-read shows
// them), passwords in /etc/shadow.
func TestUsersAndKeys(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("u1"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agentclient.Dial(ctx, "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if _, err := c.AuthorizedKeys(ctx, "root"); err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Errorf("keys before any: %v", err)
	}
	k1, k2 := "ssh-ed25519 AAAAC3one a@b", "ssh-rsa AAAAB3two c@d"
	if err := c.AddAuthorizedKeys(ctx, "root", []string{k1, k2}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAuthorizedKeys(ctx, "root", []string{k1}, false); err != nil { // already there
		t.Fatal(err)
	}
	keys, err := c.AuthorizedKeys(ctx, "root")
	if err != nil || strings.Join(keys, "|") != k2+"|"+k1 { // last line first, as qemu-ga 7.2
		t.Fatalf("keys = %q, %v", keys, err)
	}
	var buf strings.Builder
	if _, err := agentclient.ReadFile(ctx, c, "/root/.ssh/authorized_keys", &buf, agentclient.FileOptions{}); err != nil || buf.String() != k1+"\n"+k2 {
		t.Errorf("authorized_keys file = %q, %v", buf.String(), err)
	}
	if err := c.RemoveAuthorizedKeys(ctx, "root", []string{k1, "ssh-rsa notthere"}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.AuthorizedKeys(ctx, "root"); strings.Join(keys, "|") != k2 {
		t.Errorf("after remove: %q", keys)
	}
	if err := c.AddAuthorizedKeys(ctx, "root", []string{k1}, true); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.AuthorizedKeys(ctx, "root"); strings.Join(keys, "|") != k1 {
		t.Errorf("after reset: %q", keys)
	}
	if _, err := c.AuthorizedKeys(ctx, "nobody"); err == nil || !strings.Contains(err.Error(), "failed to lookup user 'nobody'") {
		t.Errorf("unknown user: %v", err)
	}
	if err := c.AddAuthorizedKeys(ctx, "root", []string{"#x"}, false); err == nil || !strings.Contains(err.Error(), "invalid OpenSSH public key: '#x'") {
		t.Errorf("comment key: %v", err)
	}

	if err := c.SetUserPassword(ctx, "user", []byte("s3cret pass"), false); err != nil {
		t.Fatal(err)
	}
	if got := g.Shadow("user"); got != SimHash("user", "s3cret pass") {
		t.Errorf("shadow(user) = %q", got)
	}
	if err := c.SetUserPassword(ctx, "root", []byte("$6$salt$hash"), true); err != nil {
		t.Fatal(err)
	}
	if got := g.Shadow("root"); got != "$6$salt$hash" {
		t.Errorf("shadow(root) = %q", got)
	}
	if err := c.SetUserPassword(ctx, "nobody", []byte("x"), false); err == nil {
		t.Error("password of an unknown user set")
	}
	if err := c.SetUserPassword(ctx, "user", []byte("two\nlines"), false); err == nil || !strings.Contains(err.Error(), "forbidden characters") {
		t.Errorf("password with newline: %v", err)
	}
}
