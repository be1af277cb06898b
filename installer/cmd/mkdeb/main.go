// Command mkdeb builds Berth's Debian packages (make deb):
//
//	go run ./installer/cmd/mkdeb [-out build/deb] [-arch amd64] [-version 0.1.0] [-print-version]
//
// The version comes from git describe (see installer.GitVersion) unless
// -version is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-edge/berth/installer"
)

func main() {
	if err := run(); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	out := fs.String("out", "build/deb", "output directory")
	arch := fs.String("arch", "", "target GOARCH (default: this machine's)")
	version := fs.String("version", "", "upstream version, e.g. 0.1.0 (default: from git describe)")
	revision := fs.String("revision", "1", "Debian revision")
	pkgs := fs.String("packages", "", "packages to build, comma-separated (default: "+strings.Join(installer.DefaultPackages, ",")+"; berth alone when cross-building)")
	printVersion := fs.Bool("print-version", false, "print the Debian version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := repoRoot()
	if err != nil {
		return err
	}
	var v installer.Version
	if *version != "" {
		v = installer.Version{Upstream: strings.TrimPrefix(*version, "v"), Revision: *revision}
	} else if v, err = installer.GitVersion(ctx, root); err != nil {
		return err
	}
	if err := v.Validate(); err != nil {
		return err
	}
	if *printVersion {
		fmt.Println(v.Debian())
		return nil
	}
	var packages []string
	if *pkgs != "" {
		packages = strings.Split(*pkgs, ",")
	}
	debs, err := installer.Build(ctx, installer.Options{
		Root: root, OutDir: *out, Version: v, Arch: *arch,
		Packages: packages, Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	for _, d := range debs {
		fmt.Println(d)
	}
	return nil
}

// repoRoot is the nearest directory above the working directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the berth source tree (no go.mod above the working directory)")
		}
		dir = parent
	}
}
