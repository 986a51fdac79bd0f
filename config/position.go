package config

// Locations says where keys and values are in a TOML document, so that
// other files guestdeck reads in TOML (themes) name the line and column of
// a problem as the fleet file's errors do.
type Locations struct{ p *positions }

// Locate reads src (syntax-checked already: on anything it does not
// understand it stops, and later keys are unknown) for where every key and
// value of up to four path segments starts.
func Locate(src string) Locations { return Locations{locate(src)} }

// Key is where the key at path starts (a table's header for a table), as a
// 1-based line and column; 0, 0 when unknown.
func (l Locations) Key(path ...string) (line, col int) {
	p := l.p.at(path...).Key
	return p.Line, p.Col
}

// Value is where the value of the key at path starts; 0, 0 when unknown.
func (l Locations) Value(path ...string) (line, col int) {
	p := l.p.at(path...).Val
	return p.Line, p.Col
}

// SyntaxError is a TOML decoder's error on data, read from file, as an
// *Error at the position the decoder names (counted from its byte offset,
// which is exact where its line is not).
func SyntaxError(file string, data []byte, err error) *Error { return syntaxError(file, data, err) }
