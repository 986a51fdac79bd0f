// Package layout holds no code: its test keeps README's map of the packages
// and their imports true to what `go list` reports, so a newcomer's first map
// of the code cannot drift from the code.
package layout
