// Package profiles reads the admin-defined session profiles: one file per
// profile, <name>.toml, <name>.yaml or <name>.yml, in a directory
// (/etc/berth/profiles.d by default, config sessions.profiles-dir). A
// profile names an image, its session type, command, environment,
// resources, storages, restart retry limit and pull credential; people
// launch one with `berth run --profile NAME` or POST session profile=NAME.
// The file format is documented in docs/profiles.md.
//
// Files are decoded strictly (an unknown key is an error naming the file
// and the key) and validated. A bad file does not stop the others: its
// error is listed by Set.Errors (and logged once) and the rest stay usable.
// The directory is looked at again on every access, and re-read when any
// file's name, size or modification time changed, so edits take effect
// without restarting berthd. A directory that does not exist holds no
// profiles (until it is created).
package profiles

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/berth-edge/berth/daemon/internal/config"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/api"
	"github.com/berth-edge/berth/daemon/internal/httpjson"
)

// maxFileSize bounds a profile file.
const maxFileSize = 1 << 20

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	volumeRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// ErrMissingStorage is wrapped by CheckStorages' error when a required
// storage does not exist.
var ErrMissingStorage = errors.New("create it, or mark it optional in the profile")

// NotFoundError is Profile's error for a name no file defines. It wraps
// fs.ErrNotExist.
type NotFoundError struct {
	Name, Dir string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("no profile %s in %s", e.Name, e.Dir) }

// Unwrap makes errors.Is(err, fs.ErrNotExist) true.
func (e *NotFoundError) Unwrap() error { return fs.ErrNotExist }

// file is a profile file's schema; TOML and YAML share the key names.
type file struct {
	Description    string            `toml:"description" yaml:"description"`
	Image          string            `toml:"image" yaml:"image"`
	Type           string            `toml:"type" yaml:"type"`
	Command        []string          `toml:"command" yaml:"command"`
	Env            map[string]string `toml:"env" yaml:"env"`
	Resources      resources         `toml:"resources" yaml:"resources"`
	Storages       []storage         `toml:"storages" yaml:"storages"`
	RetryLimit     int               `toml:"retry-limit" yaml:"retry-limit"`
	PullCredential string            `toml:"pull-credential" yaml:"pull-credential"`
}

type resources struct {
	Cores int `toml:"cores" yaml:"cores"`
	// RAM is in GB.
	RAM int `toml:"ram" yaml:"ram"`
}

type storage struct {
	Name     string `toml:"name" yaml:"name"`
	Target   string `toml:"target" yaml:"target"`
	ReadOnly bool   `toml:"read-only" yaml:"read-only"`
	Optional bool   `toml:"optional" yaml:"optional"`
}

// Option configures a Set.
type Option func(*Set)

// WithLogger logs each file error once, when the file is (re)read.
func WithLogger(l *slog.Logger) Option { return func(s *Set) { s.log = l } }

// Set is the profiles of one directory, re-read when it changes. Its
// methods are safe for concurrent use; a nil *Set has no profiles.
type Set struct {
	dir string
	log *slog.Logger

	mu       sync.Mutex
	stamp    string // names, sizes and mtimes of the files last read
	loaded   bool
	profiles map[string]client.Profile
	errs     []error
}

// Load reads the profiles of dir. Only an unusable dir is an error (a path
// that is not a directory, or cannot be listed); a missing dir holds no
// profiles, and bad files are reported by Errors.
func Load(dir string, opts ...Option) (*Set, error) {
	if dir == "" {
		return nil, errors.New("profiles: no directory")
	}
	s := &Set{dir: filepath.Clean(dir), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refreshLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the directory the profiles are read from.
func (s *Set) Dir() string {
	if s == nil {
		return ""
	}
	return s.dir
}

// Profile returns the profile called name. An unknown name is a
// *NotFoundError (wrapping fs.ErrNotExist); a name whose file is invalid
// is an error saying why.
func (s *Set) Profile(name string) (client.Profile, error) {
	if s == nil {
		return client.Profile{}, &NotFoundError{Name: name, Dir: "(no profiles directory)"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	if p, ok := s.profiles[name]; ok {
		return clone(p), nil
	}
	for _, err := range s.errs {
		var fe *FileError
		if errors.As(err, &fe) && fe.Name == name {
			return client.Profile{}, fmt.Errorf("profile %s is invalid: %w", name, err)
		}
	}
	return client.Profile{}, &NotFoundError{Name: name, Dir: s.dir}
}

// List returns the valid profiles, sorted by name (never nil).
func (s *Set) List() []client.Profile {
	out := []client.Profile{}
	if s == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	for _, name := range slices.Sorted(maps.Keys(s.profiles)) {
		out = append(out, clone(s.profiles[name]))
	}
	return out
}

// Errors returns the errors of the files that could not be used (each a
// *FileError, except a directory that cannot be listed), sorted by file.
func (s *Set) Errors() []error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	return slices.Clone(s.errs)
}

// FileError is what was wrong with one profile file.
type FileError struct {
	// Path of the file; Name the profile it would define.
	Path, Name string
	Err        error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// refresh re-reads the directory if it changed; a directory that cannot
// be listed any more becomes the only error, with no profiles.
func (s *Set) refresh() {
	if err := s.refreshLocked(); err != nil {
		s.profiles, s.errs, s.stamp, s.loaded = map[string]client.Profile{}, []error{err}, "", false
		s.log.Warn("profiles directory unusable", "dir", s.dir, "err", err)
	}
}

// refreshLocked lists dir and, when anything changed since the last read,
// parses every profile file again.
func (s *Set) refreshLocked() error {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		entries, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("profiles directory %s: %w", s.dir, err)
	}
	type candidate struct{ name, path, ext string }
	var cands []candidate
	var stamp strings.Builder
	for _, e := range entries {
		fname := e.Name()
		ext := path.Ext(fname)
		if strings.HasPrefix(fname, ".") || (ext != ".toml" && ext != ".yaml" && ext != ".yml") {
			continue
		}
		p := filepath.Join(s.dir, fname)
		fi, err := os.Stat(p) // follows symlinks, as reading does
		if err != nil || fi.IsDir() {
			continue
		}
		fmt.Fprintf(&stamp, "%s\x00%d\x00%d\n", fname, fi.Size(), fi.ModTime().UnixNano())
		cands = append(cands, candidate{name: strings.TrimSuffix(fname, ext), path: p, ext: ext})
	}
	if s.loaded && stamp.String() == s.stamp {
		return nil
	}

	profiles := map[string]client.Profile{}
	var errs []error
	paths := map[string][]string{}
	for _, c := range cands {
		paths[c.name] = append(paths[c.name], c.path)
	}
	for _, c := range cands {
		if ps := paths[c.name]; len(ps) > 1 {
			errs = append(errs, &FileError{Path: c.path, Name: c.name,
				Err: fmt.Errorf("profile %s is defined by more than one file (%s): keep one", c.name, strings.Join(ps, ", "))})
			continue
		}
		p, err := readFile(c.path, c.name, c.ext)
		if err != nil {
			errs = append(errs, &FileError{Path: c.path, Name: c.name, Err: err})
			continue
		}
		profiles[c.name] = p
	}
	slices.SortFunc(errs, func(a, b error) int { return cmp.Compare(a.Error(), b.Error()) })
	for _, err := range errs {
		s.log.Warn("profile file ignored", "err", err)
	}
	s.profiles, s.errs, s.stamp, s.loaded = profiles, errs, stamp.String(), true
	return nil
}

// readFile reads, decodes and validates one profile file.
func readFile(p, name, ext string) (client.Profile, error) {
	f, err := os.Open(p)
	if err != nil {
		return client.Profile{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return client.Profile{}, err
	}
	if len(b) > maxFileSize {
		return client.Profile{}, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	var fp file
	if ext == ".toml" {
		err = decodeTOML(b, &fp)
	} else {
		err = decodeYAML(b, &fp)
	}
	if err != nil {
		return client.Profile{}, err
	}
	return validate(name, fp)
}

// decodeTOML decodes strictly, naming unknown or mistyped keys, as the
// configuration file is decoded.
func decodeTOML(b []byte, fp *file) error { return config.DecodeStrict(b, fp) }

var yamlUnknownRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type \S+$`)

// decodeYAML decodes one YAML document strictly, naming unknown keys.
func decodeYAML(b []byte, fp *file) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(fp)
	if errors.Is(err, io.EOF) {
		return nil // an empty file: validation says what is missing
	}
	var terr *yaml.TypeError
	if errors.As(err, &terr) {
		msgs := make([]string, 0, len(terr.Errors))
		for _, m := range terr.Errors {
			if sm := yamlUnknownRE.FindStringSubmatch(m); sm != nil {
				m = fmt.Sprintf("unknown key %q (line %s)", sm[2], sm[1])
			}
			msgs = append(msgs, m)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	if err != nil {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document: a profile file holds one")
	}
	return nil
}

// validate checks a decoded file and turns it into the API's Profile.
func validate(name string, f file) (client.Profile, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !nameRE.MatchString(name) {
		bad("the file name %q is not a profile name: use lower-case letters, digits and '-' (at most 63), then .toml, .yaml or .yml", name)
	}
	if f.Image == "" {
		bad("image is required")
	} else if _, err := reference.ParseNormalizedNamed(f.Image); err != nil {
		bad("image %q is not a valid image reference: %v", f.Image, err)
	}
	if !slices.Contains(client.SessionTypes, f.Type) {
		if f.Type == "" {
			bad("type is required (one of %s)", strings.Join(client.SessionTypes, ", "))
		} else {
			bad("type %q is not a session type (one of %s)", f.Type, strings.Join(client.SessionTypes, ", "))
		}
	}
	if len(f.Command) > 0 && f.Command[0] == "" {
		bad("command[0] is empty")
	}
	for _, k := range slices.Sorted(maps.Keys(f.Env)) {
		if !envKeyRE.MatchString(k) {
			bad("env key %q is not a variable name", k)
		}
	}
	if f.Resources.Cores < 0 {
		bad("resources.cores is %d, below 0", f.Resources.Cores)
	}
	if f.Resources.RAM < 0 {
		bad("resources.ram is %d (GB), below 0", f.Resources.RAM)
	}
	if f.RetryLimit < 0 {
		bad("retry-limit is %d, below 0", f.RetryLimit)
	}
	if strings.ContainsAny(f.PullCredential, " \t\r\n") {
		bad("pull-credential %q contains white space", f.PullCredential)
	}
	targets := map[string]bool{}
	storages := make([]client.ProfileStorage, 0, len(f.Storages))
	for i, st := range f.Storages {
		where := fmt.Sprintf("storages[%d]", i)
		switch {
		case st.Name == "":
			bad("%s: name is required (a Docker volume name or an absolute host path)", where)
		case strings.HasPrefix(st.Name, "/"):
			if filepath.Clean(st.Name) != st.Name {
				bad("%s: host path %q is not clean (write %q)", where, st.Name, filepath.Clean(st.Name))
			}
		case !volumeRE.MatchString(st.Name):
			bad("%s: name %q is neither a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+) nor an absolute host path", where, st.Name)
		}
		switch {
		case st.Target == "":
			bad("%s: target is required (an absolute path in the container)", where)
		case !path.IsAbs(st.Target):
			bad("%s: target %q is not an absolute path", where, st.Target)
		case path.Clean(st.Target) == "/":
			bad("%s: target cannot be /", where)
		case targets[path.Clean(st.Target)]:
			bad("%s: target %q is mounted twice", where, st.Target)
		}
		targets[path.Clean(st.Target)] = true
		storages = append(storages, client.ProfileStorage{
			Name: st.Name, Target: path.Clean(st.Target), ReadOnly: st.ReadOnly, Optional: st.Optional,
		})
	}
	if len(errs) > 0 {
		return client.Profile{}, errors.New(strings.Join(errs, "; "))
	}
	p := client.Profile{
		Name:           name,
		Description:    f.Description,
		Image:          f.Image,
		Type:           f.Type,
		Command:        f.Command,
		Env:            f.Env,
		Cores:          f.Resources.Cores,
		RAMGB:          f.Resources.RAM,
		RetryLimit:     f.RetryLimit,
		PullCredential: f.PullCredential,
	}
	if len(storages) > 0 {
		p.Storages = storages
	}
	if len(p.Env) == 0 {
		p.Env = nil
	}
	if len(p.Command) == 0 {
		p.Command = nil
	}
	return p, nil
}

// clone deep-copies p so callers cannot change the Set's copy.
func clone(p client.Profile) client.Profile {
	p.Command = slices.Clone(p.Command)
	p.Env = maps.Clone(p.Env)
	p.Storages = slices.Clone(p.Storages)
	return p
}

// VolumeExists reports whether a Docker volume exists (engine lookup).
type VolumeExists func(ctx context.Context, name string) (bool, error)

// CheckStorages returns the storages of p to mount: those that exist
// (absolute names are host paths, checked with os.Stat; other names are
// Docker volumes, checked with volumeExists), skipping missing optional
// ones. The first missing required storage is an error naming it and
// wrapping ErrMissingStorage; a failed check is an error too.
func CheckStorages(ctx context.Context, p client.Profile, volumeExists VolumeExists) ([]client.ProfileStorage, error) {
	mounts := []client.ProfileStorage{}
	for _, st := range p.Storages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var (
			exists bool
			kind   string
		)
		if strings.HasPrefix(st.Name, "/") {
			kind = "host path"
			_, err := os.Stat(st.Name)
			switch {
			case err == nil:
				exists = true
			case errors.Is(err, fs.ErrNotExist):
			default:
				return nil, fmt.Errorf("profile %s: storage %s: %w", p.Name, st.Name, err)
			}
		} else {
			kind = "Docker volume"
			if volumeExists == nil {
				return nil, fmt.Errorf("profile %s: storage %s: no way to look up Docker volumes", p.Name, st.Name)
			}
			ok, err := volumeExists(ctx, st.Name)
			if err != nil {
				return nil, fmt.Errorf("profile %s: storage %s: looking up the volume: %w", p.Name, st.Name, err)
			}
			exists = ok
		}
		switch {
		case exists:
			mounts = append(mounts, st)
		case st.Optional:
		default:
			return nil, fmt.Errorf("profile %s: required storage %s (%s, for %s) does not exist: %w", p.Name, st.Name, kind, st.Target, ErrMissingStorage)
		}
	}
	return mounts, nil
}

// Routes serves GET /api/v1/profiles: the valid profiles ([]client.Profile,
// sorted by name). Files that could not be used are left out (berthd logs
// why; Errors lists them).
func (s *Set) Routes() api.Routes {
	return api.Routes{
		Prefixes: []string{"/api/v1"},
		Handlers: map[string]http.Handler{
			"GET /profiles": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				httpjson.Write(w, http.StatusOK, s.List())
			}),
		},
	}
}
