package fleet

import (
	"context"

	"github.com/guestdeck/guestdeck/agentclient"
)

// listDirFor lists dir the way g's OS can: PowerShell on a Windows guest
// (its OS says so, or the path is a drive path), the stat script elsewhere.
func listDirFor(ctx context.Context, a agentclient.Agent, g *Guest, dir string) ([]agentclient.DirEntry, error) {
	if IsWindows(g) || agentclient.IsWindowsPath(dir) {
		return agentclient.ListDirWindows(ctx, a, dir)
	}
	return listDir(ctx, a, dir)
}

// IsWindows reports whether g's agent said its OS is Windows.
func IsWindows(g *Guest) bool { return g != nil && agentclient.IsWindows(g.OS) }
