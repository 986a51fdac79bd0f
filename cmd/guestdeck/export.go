package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/guestdeck/guestdeck/fleet/exporter"
)

// exportShutdown bounds the scrapes still running when export is told to
// stop.
const exportShutdown = 5 * time.Second

// export serves the fleet's guests and sources in the Prometheus exposition
// format at /metrics until ctx ends (SIGINT, SIGTERM). The fleet is opened
// read-only: export polls, it never changes a guest.
func (c *cli) export(ctx context.Context, args []string) int {
	fs := c.flags("export")
	listen := fs.String("listen", "127.0.0.1:9731", "address to serve /metrics on (loopback unless --listen-any)")
	listenAny := fs.Bool("listen-any", false, "allow a --listen address that is not loopback (the metrics name every guest)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		c.errorf("export takes no arguments (every guest of the fleet file is exported)")
		return exitUsage
	}
	if err := checkListen(*listen, *listenAny); err != nil {
		c.errorf("export: %v", err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		c.errorf("export: %v", err)
		return exitUsage
	}
	// "localhost" may resolve to anything: what counts is what was bound.
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); !*listenAny && (err != nil || !ap.Addr().IsLoopback()) {
		ln.Close()
		c.errorf("export: %s is bound to %s, not loopback; pass --listen-any to serve beyond this machine", *listen, ln.Addr())
		return exitUsage
	}
	c.readonly = true // before openFleet: every mutating action is refused
	o, code := c.openFleet(ctx, false, nil)
	if o == nil {
		ln.Close()
		return code
	}
	defer o.close()
	o.fleet.Start(ctx)

	reg := prometheus.NewRegistry()
	reg.MustRegister(exporter.New(o.fleet), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A scrape is one pass over a snapshot: a few at once is plenty,
		// and more are refused rather than queued.
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
		ErrorHandling:       promhttp.ContinueOnError,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(c.stderr, "guestdeck: exporting %d guests on http://%s/metrics\n", len(o.fleet.Snapshot().Guests), ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		c.errorf("export: %v", err)
		return exitFail
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), exportShutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		c.errorf("export: shutting down: %v", err)
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		c.errorf("export: %v", err)
		return exitFail
	}
	return exitOK
}

// checkListen refuses an address beyond this machine unless anyAddr: the
// exposition names every guest, host and tag of the fleet. A host that is
// not an IP literal is allowed only as "localhost" (and checked again once
// bound); "" and ":PORT" mean every interface.
func checkListen(addr string, anyAddr bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if anyAddr {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		what := host
		if host == "" {
			what = "every interface"
		}
		return fmt.Errorf("--listen %q is not a loopback address (it serves %s); pass --listen-any to serve beyond this machine", addr, what)
	}
	return nil
}
