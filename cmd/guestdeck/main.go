package main

import (
	_ "charm.land/bubbles/v2/table"
	_ "charm.land/bubbletea/v2"
	_ "charm.land/lipgloss/v2"
	_ "github.com/BurntSushi/toml"
	_ "github.com/digitalocean/go-libvirt"
	_ "github.com/mdlayher/vsock"
)

func main() {}
