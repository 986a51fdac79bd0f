package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/charmbracelet/x/term"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// maxSecret bounds a password read from standard input: a crypt(3) hash
// is about 100 bytes, a passphrase rarely more than a few hundred.
const maxSecret = 4096

// readSecret reads the password of `run password` into act: from the
// terminal without echo (asked twice unless it is a hash), or from
// standard input when that is not a terminal (one line; the newline is
// dropped). It is never an argument, so it never shows in ps, the audit
// log's command line or the dry run. ok false: exit with code.
func (c *cli) readSecret(act *fleet.Action) (code int, ok bool) {
	what := "new password"
	if act.Users.Crypted {
		what = "password hash (crypt(3), e.g. from `openssl passwd -6`)"
	}
	user := present.Text(act.Users.User, nameCells)
	var pw []byte
	if f, isFile := c.stdin.(*os.File); isFile && isTerminal(f) {
		fmt.Fprintf(c.stderr, "%s for %s: ", what, user)
		b, err := term.ReadPassword(f.Fd())
		fmt.Fprintln(c.stderr)
		if err != nil {
			c.errorf("run password: reading the password: %v; nothing was sent", err)
			return exitUsage, false
		}
		pw = b
		if !act.Users.Crypted {
			fmt.Fprintf(c.stderr, "again: ")
			again, err := term.ReadPassword(f.Fd())
			fmt.Fprintln(c.stderr)
			same := err == nil && bytes.Equal(pw, again)
			clear(again)
			if !same {
				clear(pw)
				c.errorf("run password: the two passwords differ; nothing was sent")
				return exitUsage, false
			}
		}
	} else {
		b, err := io.ReadAll(io.LimitReader(c.stdin, maxSecret+1))
		if err != nil {
			c.errorf("run password: reading the password from standard input: %v; nothing was sent", err)
			return exitUsage, false
		}
		if len(b) > maxSecret {
			clear(b)
			c.errorf("run password: standard input holds more than %d bytes; want one line; nothing was sent", maxSecret)
			return exitUsage, false
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		if bytes.ContainsAny(b, "\n") {
			clear(b)
			c.errorf("run password: standard input holds more than one line; nothing was sent")
			return exitUsage, false
		}
		pw = b
	}
	if len(pw) == 0 {
		c.errorf("run password: empty password; nothing was sent")
		return exitUsage, false
	}
	act.Users.Secret = fleet.Secret(pw)
	return exitOK, true
}
