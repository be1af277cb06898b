package installer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2/files"
)

// BerthLintianOverrides are the lintian findings the berth package accepts,
// each for a reason:
//
//   - statically-linked-binary: berthd and berth are static Go programs
//     (CGO_ENABLED=0) on purpose: one binary that runs on any Debian or
//     Ubuntu release, with no libc dependency.
//   - non-standard-file-perm for the config: /etc/berth/config.toml may hold
//     nuvla.api-secret, so it is 0640 root:root rather than world-readable.
//   - initial-upload-closes-no-bugs: the package is not uploaded to Debian,
//     so there is no ITP bug to close.
//   - package-supports-alternative-init-but-no-init.d-script: berthd is
//     systemd-only (sd_notify readiness, the watchdog, the sandboxing).
var BerthLintianOverrides = []string{
	"berth: initial-upload-closes-no-bugs",
	"berth: package-supports-alternative-init-but-no-init.d-script",
	"berth: statically-linked-binary [usr/bin/berth]",
	"berth: statically-linked-binary [usr/sbin/berthd]",
	"berth: non-standard-file-perm 0640 != 0644 [etc/berth/config.toml]",
}

// berthSpec stages the berth package: berthd, the berth CLI, the unit, the
// default config (a conffile), bash completion, man pages, docs.
func berthSpec(ctx context.Context, s *stage) (*spec, error) {
	berthd, err := s.binary(ctx, "berthd", "./daemon/cmd/berthd", false)
	if err != nil {
		return nil, err
	}
	berth, err := s.binary(ctx, "berth", "./daemon/cmd/berth", false)
	if err != nil {
		return nil, err
	}
	// Completion and man pages come from the programs themselves, run on
	// the build machine.
	hostBerthd, err := s.binary(ctx, "berthd", "./daemon/cmd/berthd", true)
	if err != nil {
		return nil, err
	}
	hostBerth, err := s.binary(ctx, "berth", "./daemon/cmd/berth", true)
	if err != nil {
		return nil, err
	}
	completion, err := run(ctx, hostBerth, "completion", "bash")
	if err != nil {
		return nil, err
	}
	berthdMan, err := s.berthdManPage(ctx, hostBerthd)
	if err != nil {
		return nil, err
	}
	berthMan, err := s.berthManPage(ctx, hostBerth)
	if err != nil {
		return nil, err
	}
	config := s.opts.ConfigTOML
	if config == nil {
		if config, err = embeddedFile("config.toml"); err != nil {
			return nil, err
		}
	}
	unit, err := os.ReadFile(filepath.Join(s.opts.Root, "systemd", "berthd.service"))
	if err != nil {
		return nil, err
	}
	ops, err := os.ReadFile(filepath.Join(s.opts.Root, "docs", "operations.md"))
	if err != nil {
		return nil, err
	}

	var c files.Contents
	stageFile := func(dst string, data []byte, mode os.FileMode) error {
		p, err := s.write("berth"+dst, data, mode)
		if err != nil {
			return err
		}
		c = append(c, s.file(p, dst, mode))
		return nil
	}
	c = append(c,
		s.file(berthd, "/usr/sbin/berthd", 0o755),
		s.file(berth, "/usr/bin/berth", 0o755),
		s.dirEntry("/etc/berth", 0o755),
	)
	for _, f := range []struct {
		dst  string
		data []byte
	}{
		{"/usr/lib/systemd/system/berthd.service", unit},
		{"/usr/share/bash-completion/completions/berth", completion},
		{"/usr/share/man/man8/berthd.8.gz", gzipped(berthdMan)},
		{"/usr/share/man/man1/berth.1.gz", gzipped(berthMan)},
		{"/usr/share/doc/berth/operations.md.gz", gzipped(ops)},
	} {
		if err := stageFile(f.dst, f.data, 0o644); err != nil {
			return nil, err
		}
	}
	cfg, err := s.write("berth/etc/berth/config.toml", config, 0o640)
	if err != nil {
		return nil, err
	}
	conf := s.file(cfg, "/etc/berth/config.toml", 0o640)
	conf.Type = files.TypeConfigNoReplace // a conffile: dpkg keeps local edits
	c = append(c, conf)

	docs, err := s.docs("berth", BerthLintianOverrides)
	if err != nil {
		return nil, err
	}
	c = append(c, docs...)

	scripts, err := s.maintainerScripts("berth-scripts", "postinst", "prerm", "postrm")
	if err != nil {
		return nil, err
	}

	return &spec{
		name:    "berth",
		section: "admin",
		summary: "edge daemon running the apps of a Nuvla control plane on Docker",
		description: `Berth turns a Linux host into a remotely managed appliance for
containerised apps. berthd keeps the apps that a control plane speaking
the Nuvla REST API (or the person at the box) asked for running on the
local Docker engine, and reports what is really there. berth is its
command-line client.

This package installs berthd as the systemd service berthd.service,
enabled and started on installation, and creates the berth group whose
members may use the local API (/run/berth/berthd.sock).`,
		// adduser: postinst creates the berth group with addgroup.
		depends: []string{"adduser"},
		// berthd drives a Docker engine, normally the local one; it may
		// also be remote (docker.host = "tcp://..."), so Recommends.
		recommends: []string{"docker.io | docker-ce"},
		contents:   c,
		scripts:    scripts,
	}, nil
}

func (s *stage) berthdManPage(ctx context.Context, bin string) ([]byte, error) {
	help, err := programHelp(ctx, bin, "berthd", "-h", "-config")
	if err != nil {
		return nil, err
	}
	return manPage{
		Name: "berthd", Section: 8, Source: "berth " + s.version.Upstream, Manual: "System Administration", Date: s.mtime,
		Summary:  "the Berth edge daemon",
		Synopsis: ".B berthd\n[\\fIflags\\fR]",
		Body: []manSection{
			{Heading: "Description", Text: `berthd keeps the apps that a control plane speaking the Nuvla REST API (or the person at the box) asked for running on the local Docker engine, and reports what is really there.
It serves a local API on a unix socket for berth(1) and the desktop app, and a web UI on a loopback port.

On a Debian system it runs as the systemd service berthd.service (Type=notify, with a watchdog): use systemctl and journalctl -u berthd rather than starting it by hand.`},
			{Heading: "Options", Text: "Settings come from the configuration file, then the environment, then the flags. berthd -h prints:", Verbatim: help},
			{Heading: "Environment", Text: `NUVLA_ENDPOINT, NUVLA_ENDPOINT_INSECURE, NUVLAEDGE_UUID (or NUVLABOX_UUID), NUVLAEDGE_API_KEY and NUVLAEDGE_API_SECRET configure the control plane, as for NuvlaEdge. Set them for the service with systemctl edit berthd.

DOCKER_HOST selects the Docker engine when docker.host is not set.`},
			{Heading: "Files", Text: `/etc/berth/config.toml: the configuration (TOML; unknown keys are errors).

/var/lib/berth/state.db: the state (bbolt): apps, Nuvla credentials, the job journal. Removed only when the package is purged.

/run/berth/berthd.sock: the local API, mode 0660, group berth.`},
			{Heading: "See also", Text: "berth(1), systemctl(1), journalctl(1), /usr/share/doc/berth/operations.md.gz"},
		},
	}.render(), nil
}

var commandLine = regexp.MustCompile(`^  ([a-z][a-z-]*)\s`)

func (s *stage) berthManPage(ctx context.Context, bin string) ([]byte, error) {
	help, err := runHelp(ctx, bin, "--help")
	if err != nil {
		return nil, err
	}
	body := []manSection{
		{Heading: "Description", Text: `berth shows what berthd, the Berth edge daemon, runs on this box. It talks to berthd over the local API socket only.

Members of the berth group (and root) may use it; others get "permission denied". Add a user with adduser <user> berth (the user must log in again).`},
		{Heading: "Usage", Verbatim: help},
	}
	// One subsection per command, from "Available Commands:".
	inCommands := false
	for _, l := range strings.Split(help, "\n") {
		switch {
		case strings.HasPrefix(l, "Available Commands:"):
			inCommands = true
			continue
		case inCommands && strings.TrimSpace(l) == "":
			inCommands = false
		}
		m := commandLine.FindStringSubmatch(l)
		if !inCommands || m == nil || m[1] == "help" {
			continue
		}
		sub, err := runHelp(ctx, bin, m[1], "--help")
		if err != nil {
			return nil, err
		}
		if len(body) == 2 {
			body = append(body, manSection{Heading: "Commands"})
		}
		body = append(body, manSection{Heading: "  berth " + m[1], Verbatim: sub})
	}
	if len(body) < 4 {
		return nil, fmt.Errorf("berth --help lists no commands:\n%s", help)
	}
	body = append(body,
		manSection{Heading: "Environment", Text: "BERTH_SOCKET: the socket of berthd's local API (default /run/berth/berthd.sock)."},
		manSection{Heading: "See also", Text: "berthd(8)"},
	)
	return manPage{
		Name: "berth", Section: 1, Source: "berth " + s.version.Upstream, Manual: "User Commands", Date: s.mtime,
		Summary:  "show what berthd runs on this box",
		Synopsis: ".B berth\n\\fIcommand\\fR [\\fIflags\\fR]",
		Body:     body,
	}.render(), nil
}
