package tui

import (
	tea "charm.land/bubbletea/v2"

	"charm.land/bubbles/v2/textinput"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// secretPrompt is the command line asking for an action's password
// (`:password USER`): typed masked, never in the command line's
// suggestions or the pending-action preview, and handed only to the action.
type secretPrompt struct {
	action fleet.Action
}

// askSecret turns the command line into a masked password prompt for a.
func (m *Model) askSecret(a fleet.Action) tea.Cmd {
	if m.opts.Readonly && actionMutating(a) {
		m.setStatus("read-only: "+actionString(a)+" refused", true)
		return nil
	}
	m.secret = &secretPrompt{action: a}
	m.open(layer{kind: layerCommand})
	m.cmdInput.SetValue("")
	m.cmdInput.SetSuggestions(nil)
	m.cmdInput.ShowSuggestions = false
	m.cmdInput.EchoMode = textinput.EchoPassword
	what := "password"
	if a.Users.Crypted {
		what = "password hash"
	}
	m.cmdInput.Prompt = what + " for " + present.Text(a.Users.User, 32) + ": "
	return m.cmdInput.Focus()
}

// secretKey handles a key while the password prompt is open: enter hands
// the password to the action (which then asks for confirmation as any
// action does), esc drops it.
func (m *Model) secretKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc":
		a := m.endSecret()
		m.setStatus(actionString(a)+" cancelled", false)
		return nil
	case "enter":
		pw := []byte(m.cmdInput.Value())
		a := m.endSecret()
		if len(pw) == 0 {
			m.setStatus(actionString(a)+": empty password; nothing was sent", true)
			return nil
		}
		a.Users.Secret = fleet.Secret(pw)
		cmd := m.startAction(a)
		if m.run == nil && m.openConfirmation() == nil {
			clear(a.Users.Secret) // refused or nothing to do: not kept
		}
		return cmd
	}
	var cmd tea.Cmd
	m.cmdInput, cmd = m.cmdInput.Update(k)
	return cmd
}

// endSecret closes the prompt, forgets what was typed and puts the
// command line back as it was.
func (m *Model) endSecret() fleet.Action {
	a := m.secret.action
	m.secret = nil
	m.cmdInput.SetValue("")
	m.cmdInput.EchoMode = textinput.EchoNormal
	m.cmdInput.Prompt = ":"
	m.cmdInput.ShowSuggestions = true
	m.cmdInput.SetSuggestions(m.completions())
	m.closeLayer(layerCommand)
	m.cmdInput.Blur()
	return a
}
