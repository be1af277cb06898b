package installer

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the "deb" packager
	"github.com/goreleaser/nfpm/v2/files"
)

// Package metadata shared by every package.
const (
	Maintainer = "Berth maintainers <maintainers@berth-edge.example>"
	Homepage   = "https://github.com/berth-edge/berth"
)

//go:embed files
var embedded embed.FS

// Options says what to build.
type Options struct {
	// Root is the repository root (the directory holding go.mod).
	Root string
	// OutDir receives the .deb files.
	OutDir string
	// Version of the packages; zero: derived from git (see GitVersion).
	Version Version
	// Arch is the target GOARCH; empty: the host's.
	Arch string
	// Packages to build; empty: DefaultPackages.
	Packages []string
	// ConfigTOML replaces installer/files/config.toml (tests use it to
	// ship a changed default config in an upgrade).
	ConfigTOML []byte
	// MTime of every file; zero: SOURCE_DATE_EPOCH, else the HEAD commit's
	// time, else now.
	MTime time.Time
	// Go is the go command; empty: "go".
	Go string
	// Log receives progress lines; nil: discarded.
	Log io.Writer
}

// DefaultPackages are the packages `make deb` builds: berth (berthd and
// the CLI) and berth-desktop (the GUI, built with cgo for this machine's
// architecture only; see DefaultPackagesFor).
var DefaultPackages = []string{"berth", "berth-desktop"}

// DefaultPackagesFor are the packages `make deb` builds for goarch: all of
// them natively, berth alone when cross-building (berth-desktop links GTK
// with cgo).
func DefaultPackagesFor(goarch string) []string {
	if goarch == "" || goarch == runtime.GOARCH {
		return DefaultPackages
	}
	return []string{"berth"}
}

// specs maps each package name to the function that stages its files.
var specs = map[string]func(context.Context, *stage) (*spec, error){
	"berth":         berthSpec,
	"berth-desktop": desktopSpec,
}

// spec is one package before nfpm sees it.
type spec struct {
	name        string
	summary     string // Description's first line
	description string // the long description, paragraphs of plain text
	section     string
	depends     []string
	recommends  []string
	contents    files.Contents
	scripts     nfpm.Scripts // paths of the staged scripts
}

// stage holds what is shared while building: the staging directory, built
// binaries, the version.
type stage struct {
	opts    Options
	dir     string
	version Version
	debArch string
	mtime   time.Time
	bins    map[string]string // "target:berthd" or "host:berthd" -> path
}

// Build builds the packages and returns the paths of the .deb files.
func Build(ctx context.Context, opts Options) ([]string, error) {
	if opts.Root == "" {
		return nil, errors.New("installer: Options.Root is required")
	}
	if opts.OutDir == "" {
		return nil, errors.New("installer: Options.OutDir is required")
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	if opts.Go == "" {
		opts.Go = "go"
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if len(opts.Packages) == 0 {
		opts.Packages = DefaultPackagesFor(opts.Arch)
	}
	debArch, err := DebianArch(opts.Arch)
	if err != nil {
		return nil, err
	}
	v := opts.Version
	if v == (Version{}) {
		if v, err = GitVersion(ctx, opts.Root); err != nil {
			return nil, fmt.Errorf("version: %w", err)
		}
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "berth-deb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st := &stage{opts: opts, dir: dir, version: v, debArch: debArch, mtime: buildTime(ctx, opts), bins: map[string]string{}}

	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	for _, name := range opts.Packages {
		mk, ok := specs[name]
		if !ok {
			return nil, fmt.Errorf("unknown package %q (known: %s)", name, strings.Join(slices.Sorted(mapsKeys(specs)), ", "))
		}
		sp, err := mk(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		path, err := st.pack(sp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(opts.Log, "built %s\n", path)
		out = append(out, path)
	}
	return out, nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// DebianArch maps a GOARCH to the Debian architecture name.
func DebianArch(goarch string) (string, error) {
	switch goarch {
	case "amd64", "arm64", "riscv64", "s390x", "mips64le":
		return goarch, nil
	case "arm":
		return "armhf", nil // built with GOARM=7
	case "386":
		return "i386", nil
	case "ppc64le":
		return "ppc64el", nil
	}
	return "", fmt.Errorf("GOARCH %q has no Debian architecture here", goarch)
}

// buildTime makes builds reproducible: SOURCE_DATE_EPOCH, else the time of
// the HEAD commit.
func buildTime(ctx context.Context, opts Options) time.Time {
	if !opts.MTime.IsZero() {
		return opts.MTime.UTC()
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	cmd := exec.CommandContext(ctx, "git", "log", "-1", "--format=%ct")
	cmd.Dir = opts.Root
	if out, err := cmd.Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

// binary builds a static Go program (once). host selects the build machine's
// architecture, for running the program at build time (completion, man).
func (s *stage) binary(ctx context.Context, name, pkg string, host bool) (string, error) {
	arch := s.opts.Arch
	if host {
		arch = runtime.GOARCH
	}
	key := arch + ":" + name
	if p, ok := s.bins[key]; ok {
		return p, nil
	}
	out := filepath.Join(s.dir, "bin-"+arch, name)
	ldflags := "-s -w -X main.version=" + s.version.Upstream
	cmd := exec.CommandContext(ctx, s.opts.Go, "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = s.opts.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if arch == "arm" {
		cmd.Env = append(cmd.Env, "GOARM=7")
	}
	fmt.Fprintf(s.opts.Log, "go build %s (%s)\n", pkg, arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	s.bins[key] = out
	return out, nil
}

// run runs a staged program and returns its standard output.
func run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LANG=C.UTF-8", "COLUMNS=80"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// runHelp returns a program's -h text, whether it prints it on stdout or
// stderr, and whatever its exit status.
func runHelp(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LANG=C.UTF-8", "COLUMNS=80"}
	out, _ := cmd.CombinedOutput()
	if len(out) == 0 {
		return "", fmt.Errorf("%s %s printed no help", filepath.Base(bin), strings.Join(args, " "))
	}
	return string(out), nil
}

// programHelp is the help text of program (at bin) for flag, checked to
// hold marker, so that a wrong binary is not documented.
func programHelp(ctx context.Context, bin, program, flag, marker string) (string, error) {
	help, err := runHelp(ctx, bin, flag)
	if err != nil {
		return "", err
	}
	if !strings.Contains(help, marker) {
		return "", fmt.Errorf("%s %s does not look like %s's help:\n%s", program, flag, program, help)
	}
	return help, nil
}

// maintainerScripts stages a package's maintainer scripts, the
// installer/files entries named postinst, prerm and postrm ("" for none),
// under dir.
func (s *stage) maintainerScripts(dir, postinst, prerm, postrm string) (nfpm.Scripts, error) {
	var scripts nfpm.Scripts
	for _, sc := range []struct {
		name string
		dst  *string
	}{{postinst, &scripts.PostInstall}, {prerm, &scripts.PreRemove}, {postrm, &scripts.PostRemove}} {
		if sc.name == "" {
			continue
		}
		b, err := embeddedFile(sc.name)
		if err != nil {
			return scripts, err
		}
		if *sc.dst, err = s.write(dir+"/"+sc.name, b, 0o755); err != nil {
			return scripts, err
		}
	}
	return scripts, nil
}

// write stages a file and returns its path.
func (s *stage) write(name string, data []byte, mode os.FileMode) (string, error) {
	p := filepath.Join(s.dir, "files", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return p, os.WriteFile(p, data, mode)
}

// embeddedFile returns an installer/files entry.
func embeddedFile(name string) ([]byte, error) { return embedded.ReadFile("files/" + name) }

// gzipped compresses like `gzip -9n`: maximum compression, no name, no
// timestamp (lintian checks both).
func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}

// changelog is a one-entry Debian changelog for this build.
func (s *stage) changelog(pkg string) []byte {
	return fmt.Appendf(nil, "%s (%s) unstable; urgency=medium\n\n  * Built from the berth source tree by installer/ (make deb).\n\n -- %s  %s\n",
		pkg, s.version.Debian(), Maintainer, s.mtime.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

// file is a content entry for a staged file.
func (s *stage) file(src, dst string, mode os.FileMode) *files.Content {
	return &files.Content{Source: src, Destination: dst, Type: files.TypeFile,
		FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: s.mtime}}
}

// dir is a content entry for a directory the package owns.
func (s *stage) dirEntry(dst string, mode os.FileMode) *files.Content {
	return &files.Content{Destination: dst, Type: files.TypeDir,
		FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: s.mtime}}
}

// docs stages the files every package ships under /usr/share/doc and the
// lintian overrides.
func (s *stage) docs(name string, overrides []string) (files.Contents, error) {
	cp, err := embeddedFile("copyright")
	if err != nil {
		return nil, err
	}
	var c files.Contents
	add := func(dst string, data []byte) error {
		p, err := s.write(name+"/"+filepath.Base(dst), data, 0o644)
		if err != nil {
			return err
		}
		c = append(c, s.file(p, dst, 0o644))
		return nil
	}
	if err := add("/usr/share/doc/"+name+"/copyright", cp); err != nil {
		return nil, err
	}
	if err := add("/usr/share/doc/"+name+"/changelog.Debian.gz", gzipped(s.changelog(name))); err != nil {
		return nil, err
	}
	if len(overrides) > 0 {
		if err := add("/usr/share/lintian/overrides/"+name, []byte(strings.Join(overrides, "\n")+"\n")); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// pack turns a spec into a .deb in OutDir.
func (s *stage) pack(sp *spec) (string, error) {
	info := &nfpm.Info{
		Name:          sp.name,
		Arch:          s.debArch,
		Platform:      "linux",
		Version:       s.version.Upstream,
		VersionSchema: "none",
		Release:       s.version.Revision,
		Section:       sp.section,
		Priority:      "optional",
		Maintainer:    Maintainer,
		Homepage:      Homepage,
		Description:   sp.summary + "\n" + sp.description,
		MTime:         s.mtime,
		Overridables: nfpm.Overridables{
			Depends:    sp.depends,
			Recommends: sp.recommends,
			Contents:   sp.contents,
			Scripts:    sp.scripts,
			Umask:      0o022,
			Deb:        nfpm.Deb{Compression: "xz"},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	pkger, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.opts.OutDir, fmt.Sprintf("%s_%s_%s.deb", sp.name, s.version.Debian(), s.debArch))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if err := pkger.Package(info, f); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return path, os.Rename(tmp, path)
}
