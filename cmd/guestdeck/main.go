//go:build !wip

// Placeholder until the command's parts land; the real command is built with -tags wip.
package main

func main() {}
