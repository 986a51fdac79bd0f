package present

import (
	"strings"
	"unicode/utf8"
)

// ShellArg writes s as one shell word, for the commands guestdeck tells the
// operator to run ("thaw it with: guestdeck run thaw NAME"). A guest's name
// can be a libvirt domain name, which the host chooses: pasted as it is,
// "hv-a/$(rm -rf ~)" would run a command and "hv-a/my vm" thaw two guests
// that are not it. A word of only the characters a shell takes literally is
// left as it is; anything else is single-quoted; a word holding characters
// Text escapes is written $'...' (bash, zsh, ksh) with their bytes as \xHH,
// so what is printed is safe on a terminal and the shell gives back exactly
// s.
func ShellArg(s string) string {
	if s != "" && shellLiteral(s) {
		return s
	}
	if Clean(s) {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(s[i])
		case unsafe(r, size):
			for k := range size {
				writeHex(&b, `\x`, uint32(s[i+k]), 2)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('\'')
	return b.String()
}

// shellLiteral reports whether every byte of s means itself to a shell,
// wherever it stands in a word.
func shellLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("@%+=:,./_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}
