package agentclient_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

var updateDoc = flag.Bool("update", false, "rewrite ../docs/commands.md from the command table")

const commandsDoc = "../docs/commands.md"

// renderCommandsDoc writes docs/commands.md: the command table as a reader
// of the docs needs it.
func renderCommandsDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`# Agent commands

What guestdeck knows about each qemu-ga command. This file is generated from
the command table in agentclient/commands.go (the one place these facts are
written): run ` + "`go generate ./agentclient`" + ` after changing the table; a test
fails while this file is stale.

- **since**: the qemu-ga version that introduced the command.
- **mutates**: the command may change the guest or state the agent keeps for
  all its clients; read-only mode (` + "`--readonly`" + `, ` + "`readonly = true`" + `) refuses it.
  A command not listed here counts as mutating.
- **while frozen**: qemu-ga still runs it while the guest's filesystems are
  frozen; it refuses every other command then.
- **replies**: the agent answers on success (shutdown and suspend do not: the
  guest goes away instead).
- **libvirt API**: the typed libvirt call that runs it through a libvirt
  connection; "–" where libvirt has none and guestdeck passes it through
  virDomainQemuAgentCommand.
- **OS**: the guest systems qemu-ga offers it on (the schema's ` + "`if`" + ` conditions).
- **reply limit**: the largest reply line guestdeck reads; anything longer
  fails the call instead of growing memory. A command not listed here is held
  to ` + agentclient.FormatBytes(agentclient.RawReplyLimit) + `.

| command | since | mutates | while frozen | replies | libvirt API | OS | reply limit |
|---|---|---|---|---|---|---|---|
`)
	yes := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	for _, c := range agentclient.Commands() {
		api := "–"
		if len(c.Libvirt) > 0 {
			api = strings.Join(c.Libvirt, ", ")
		}
		limit := agentclient.FormatBytes(int64(c.MaxReply))
		if c.ReplyLimit(nil) != c.MaxReply {
			limit = "sized from the request, at most " + limit
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %s |\n",
			c.Name, c.Since, yes(c.Mutates), yes(c.WhileFrozen), yes(c.SuccessResponse), api, c.OS, limit)
	}
	return b.Bytes()
}

// TestCommandsDocCurrent fails when docs/commands.md is not what the table
// gives; -update (go generate) rewrites it.
func TestCommandsDocCurrent(t *testing.T) {
	want := renderCommandsDoc()
	if *updateDoc {
		if err := os.WriteFile(commandsDoc, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(commandsDoc)
	if err != nil {
		t.Fatalf("%v (run go generate ./agentclient)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go generate ./agentclient", commandsDoc)
	}
}
