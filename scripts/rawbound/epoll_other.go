//go:build !linux

package main

import (
	"errors"
	"time"
)

func steadyEpoll(socks []string, interval, warmup, window time.Duration) error {
	return errors.New("-epoll needs Linux")
}
