package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-edge/berth/daemon/client"
)

// emptySessions is what `berth ps` says when there are none.
const emptySessions = "No sessions. Start one with `berth create TYPE IMAGE` (see `berth images`)."

// pollEvery is how often waiting commands ask berthd when events are quiet.
const pollEvery = 2 * time.Second

func (c *cli) sessionCmds() []*cobra.Command {
	return []*cobra.Command{c.createCmd(), c.runCmd(), c.psCmd(), c.infoCmd(), c.logsCmd(), c.eventsCmd(),
		c.renewCmd(), c.deleteCmd(), c.openCmd()}
}

// launchFlags are the flags create and run share.
type launchFlags struct {
	name   string
	cores  int
	ram    int
	env    []string
	detach bool
}

func (f *launchFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "session name (letters, digits, '-'; default TYPE-N)")
	fl.IntVar(&f.cores, "cores", 0, "CPU cores to reserve (see `berth context`; default: flexible)")
	fl.IntVar(&f.ram, "ram", 0, "memory to reserve, in GB (see `berth context`; default: flexible)")
	fl.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE, repeatable (headless sessions)")
	fl.BoolVarP(&f.detach, "detach", "d", false, "print the session id and return without waiting")
}

// check validates the flags.
func (f *launchFlags) check() error {
	if f.name != "" && !validName(f.name) {
		return fmt.Errorf("--name %q: use letters, digits and '-' only", f.name)
	}
	if f.cores < 0 || f.ram < 0 {
		return errors.New("--cores and --ram must be positive")
	}
	for _, e := range f.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("--env %q: write KEY=VALUE", e)
		}
	}
	return nil
}

// validName reports whether s is a session name skaha accepts.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// nextName is prefix-N with the smallest N ≥ 1 no session uses.
func nextName(prefix string, sessions []client.Session) string {
	used := map[string]bool{}
	for _, s := range sessions {
		used[s.Name] = true
	}
	for n := 1; ; n++ {
		if name := prefix + "-" + strconv.Itoa(n); !used[name] {
			return name
		}
	}
}

// nameBase makes a session-name prefix of s: letters, digits and '-'.
func nameBase(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
	s = strings.Trim(s, "-")
	if s == "" {
		return "session"
	}
	return s
}

func (c *cli) createCmd() *cobra.Command {
	var f launchFlags
	cmd := &cobra.Command{
		Use:   "create TYPE IMAGE [-- CMD [ARGS...]]",
		Short: "Launch a session of an image",
		Long: "berth create launches a session: TYPE is one of " + strings.Join(client.SessionTypes, ", ") + ".\n" +
			"It waits until the session runs (showing the image pull), then prints how to reach it;\n" +
			"--detach prints the id and returns at once. A desktop-app session draws on your X display\n" +
			"($DISPLAY, with the cookie from $XAUTHORITY or ~/.Xauthority). A command after -- replaces\n" +
			"the image's (headless sessions).",
		Example: "  berth create notebook images.example.org/skaha/notebook:1.2 --cores 2 --ram 8\n" +
			"  berth create headless images.example.org/proj/tool:1 -- python run.py --fast",
		Args: func(cmd *cobra.Command, args []string) error {
			n := len(args)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				n = dash
			}
			if n != 2 {
				return fmt.Errorf("want TYPE and IMAGE, got %d argument(s) (see `berth create --help`)", n)
			}
			if !slices.Contains(client.SessionTypes, args[0]) {
				return fmt.Errorf("unknown session type %q: use one of %s", args[0], strings.Join(client.SessionTypes, ", "))
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				return client.SessionTypes, cobra.ShellCompDirectiveNoFileComp
			case 1:
				return c.completeImages(cmd, args[0]), cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			req := client.LaunchRequest{Type: args[0], Image: args[1], Name: f.name, Cores: f.cores, RAM: f.ram, Env: f.env}
			if rest := args[2:]; len(rest) > 0 {
				req.Cmd, req.Args = rest[0], rest[1:]
			}
			if req.Type == client.TypeDesktopApp {
				display := c.getenv("DISPLAY")
				if display == "" {
					return errors.New("a desktop-app session needs an X display: $DISPLAY is not set")
				}
				cookie, err := displayCookie(c.getenv, display)
				if err != nil {
					return err
				}
				req.Display, req.XAuth = display, cookie
			}
			return c.launch(cmd, req, nameBase(req.Type), f.detach)
		},
	}
	f.add(cmd)
	return cmd
}

func (c *cli) runCmd() *cobra.Command {
	var f launchFlags
	var profile string
	cmd := &cobra.Command{
		Use:   "run --profile NAME",
		Short: "Launch a session from an admin-defined profile",
		Long: "berth run launches the profile an administrator defined (see `berth profiles`):\n" +
			"its image, command, resources and storage. It waits like `berth create`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if profile == "" {
				return errors.New("name the profile with --profile (see `berth profiles`)")
			}
			if err := f.check(); err != nil {
				return err
			}
			req := client.LaunchRequest{Profile: profile, Name: f.name, Cores: f.cores, RAM: f.ram, Env: f.env}
			return c.launch(cmd, req, nameBase(profile), f.detach)
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "the profile to launch")
	_ = cmd.RegisterFlagCompletionFunc("profile", func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		ps, err := c.client().Profiles(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, p := range ps {
			out = append(out, cobra.CompletionWithDesc(p.Name, clean(p.Description)))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	f.add(cmd)
	return cmd
}

// launch starts the session, prints its id and, unless detach, waits
// until it runs or fails, showing pull progress on stderr.
func (c *cli) launch(cmd *cobra.Command, req client.LaunchRequest, prefix string, detach bool) error {
	cl := c.client()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if req.Name == "" {
		ctx, cancel := c.ctx(cmd)
		ss, err := cl.Sessions(ctx, client.SessionFilter{})
		cancel()
		if err != nil {
			return err
		}
		req.Name = nextName(prefix, ss)
	}

	// Subscribe before launching, so no pull event is missed.
	wctx, stopEvents := context.WithCancel(cmd.Context())
	events := make(chan client.Event, 256)
	var wg sync.WaitGroup
	if !detach {
		wg.Go(func() {
			_ = cl.Events(wctx, []string{"pull", "session"}, func(e client.Event) error {
				select {
				case events <- e:
				default: // the waiter polls as well: dropping is safe
				}
				return nil
			})
		})
	}
	defer func() {
		stopEvents()
		wg.Wait()
	}()

	ctx, cancel := c.ctx(cmd)
	id, err := cl.Launch(ctx, req)
	cancel()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, id); err != nil {
		return err
	}
	if detach {
		return nil
	}
	return c.wait(wctx, cl, id, events, out, newProgress(errOut))
}

// wait follows session id until it is Running, Completed or Failed.
func (c *cli) wait(ctx context.Context, cl *client.Client, id string, events <-chan client.Event, out io.Writer, pr *progress) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	check := func() (bool, error) {
		qctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		s, err := cl.Session(qctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			return false, nil // berthd busy: try again
		}
		return c.settled(s, out, pr)
	}
	if done, err := check(); done {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			pr.finish()
			return fmt.Errorf("stopped waiting; the session %s goes on (see `berth info %s`)", id, id)
		case e := <-events:
			switch e.Type {
			case "pull":
				var p client.PullProgress
				if e.Decode(&p) == nil && p.Session == id {
					pr.update(p)
				}
			case "session":
				var se client.SessionEvent
				if e.Decode(&se) == nil && se.ID == id && se.Status != client.StatusPending {
					if done, err := check(); done {
						return err
					}
				}
			}
		case <-tick.C:
			if done, err := check(); done {
				return err
			}
		}
	}
}

// settled reports whether s reached a status worth returning on, and
// prints what the user does next.
func (c *cli) settled(s client.Session, out io.Writer, pr *progress) (bool, error) {
	switch s.Status {
	case client.StatusRunning:
		pr.finish()
		if absoluteURL(s.ConnectURL) {
			_, err := fmt.Fprintf(out, "Running: %s\n", clean(s.ConnectURL))
			return true, err
		}
		if s.ConnectURL != "" {
			_, err := fmt.Fprintf(out, "Running. %s\n", noWebListener)
			return true, err
		}
		_, err := fmt.Fprintf(out, "Running. Follow its output with `berth logs -f %s`.\n", s.ID)
		return true, err
	case client.StatusCompleted:
		pr.finish()
		_, err := fmt.Fprintf(out, "Completed. Its output: `berth logs %s`.\n", s.ID)
		return true, err
	case client.StatusFailed:
		pr.finish()
		msg := "the session failed"
		if s.Message != "" {
			msg += ": " + clean(s.Message)
		}
		if s.ExitCode != nil {
			msg += fmt.Sprintf(" (exit code %d)", *s.ExitCode)
		}
		return true, fmt.Errorf("%s; see `berth logs %s` and `berth events %s`", msg, s.ID, s.ID)
	case client.StatusTerminating:
		pr.finish()
		return true, fmt.Errorf("the session %s is being deleted", s.ID)
	}
	if s.Message != "" {
		pr.note(s.Message)
	}
	return false, nil
}

func (c *cli) psCmd() *cobra.Command {
	var all bool
	var typ, status string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List your sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			q := url.Values{}
			if typ != "" {
				q.Set("type", typ)
			}
			if status != "" {
				q.Set("status", status)
			}
			if all {
				q.Set("view", "all")
			}
			path := "/api/v1/session"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			if c.json {
				return c.printRaw(ctx, cmd.OutOrStdout(), path)
			}
			ss := []client.Session{}
			if err := c.client().Get(ctx, path, &ss); err != nil {
				return err
			}
			return printSessions(cmd.OutOrStdout(), ss, all, c.now())
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "everyone's sessions (admins)")
	cmd.Flags().StringVar(&typ, "type", "", "only sessions of this type")
	cmd.Flags().StringVar(&status, "status", "", "only sessions in this status (Pending, Running, Completed, Failed)")
	_ = cmd.RegisterFlagCompletionFunc("type", completeTypes)
	return cmd
}

func completeTypes(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return client.SessionTypes, cobra.ShellCompDirectiveNoFileComp
}

// printSessions writes the sessions table.
func printSessions(out io.Writer, ss []client.Session, owner bool, now time.Time) error {
	if len(ss) == 0 {
		_, err := fmt.Fprintln(out, emptySessions)
		return err
	}
	tw := newTable(out)
	head := "ID\tNAME\tTYPE\tSTATUS\tIMAGE\tCPU\tRAM\tAGE"
	if owner {
		head = "ID\tOWNER\tNAME\tTYPE\tSTATUS\tIMAGE\tCPU\tRAM\tAGE"
	}
	fmt.Fprintln(tw, head)
	for _, s := range ss {
		cols := []string{orDash(s.ID)}
		if owner {
			cols = append(cols, orDash(s.UserID))
		}
		cols = append(cols, orDash(s.Name), orDash(s.Type), orDash(s.Status), orDash(s.Image),
			orDash(s.CPUCoresInUse), orDash(s.RAMInUse), age(now, parseTime(s.StartTime)))
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

// parseTime reads an RFC 3339 time; the zero time if s is not one.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// idCmd builds a command taking session ids, with id completion.
func (c *cli) idCmd(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return c.completeSessions(cmd, args), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: run,
	}
}

// completeSessions offers the ids of the caller's sessions not yet in args.
func (c *cli) completeSessions(cmd *cobra.Command, args []string) []cobra.Completion {
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	ss, err := c.client().Sessions(ctx, client.SessionFilter{})
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, s := range ss {
		if !slices.Contains(args, s.ID) {
			out = append(out, cobra.CompletionWithDesc(s.ID, clean(s.Name+" ("+s.Type+", "+s.Status+")")))
		}
	}
	return out
}

// completeImages offers the image ids of a type.
func (c *cli) completeImages(cmd *cobra.Command, typ string) []cobra.Completion {
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	imgs, err := c.client().Images(ctx, typ)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, im := range imgs {
		if im.Profile == "" {
			out = append(out, im.ID)
		}
	}
	return out
}

func (c *cli) infoCmd() *cobra.Command {
	return c.idCmd("info ID", "Show one session in detail", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		ctx, cancel := c.ctx(cmd)
		defer cancel()
		if c.json {
			return c.printRaw(ctx, cmd.OutOrStdout(), "/api/v1/session/"+url.PathEscape(args[0]))
		}
		s, err := c.client().Session(ctx, args[0])
		if err != nil {
			return err
		}
		return printSession(cmd.OutOrStdout(), s, c.now())
	})
}

// printSession writes one session in detail.
func printSession(out io.Writer, s client.Session, now time.Time) error {
	tw := newTable(out)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, clean(v))
		}
	}
	row("ID", s.ID)
	row("Name", s.Name)
	row("Type", s.Type)
	st := s.Status
	if s.Message != "" {
		st += ": " + s.Message
	}
	if s.ExitCode != nil {
		st += fmt.Sprintf(" (exit code %d)", *s.ExitCode)
	}
	row("Status", st)
	row("Image", s.Image)
	row("Profile", s.Profile)
	row("User", s.UserID)
	if s.RunAsUID != "" {
		row("Runs as", "uid "+s.RunAsUID+", gid "+s.RunAsGID)
	}
	if t := parseTime(s.StartTime); !t.IsZero() {
		row("Started", t.Local().Format(time.DateTime)+" ("+ago(now, t)+")")
	}
	if t := parseTime(s.ExpiryTime); !t.IsZero() {
		row("Expires", t.Local().Format(time.DateTime)+" (in "+human(t.Sub(now))+"; `berth renew "+s.ID+"` extends it)")
	}
	if t := parseTime(s.LastActivity); !t.IsZero() {
		row("Last used", ago(now, t))
	}
	res := func(req, use string) string {
		switch {
		case req != "" && use != "":
			return use + " of " + req
		case use != "":
			return use
		case req != "":
			return req + " reserved"
		}
		return ""
	}
	row("CPU cores", res(s.RequestedCPUCores, s.CPUCoresInUse))
	row("RAM", res(s.RequestedRAM, s.RAMInUse))
	row("Connect", s.ConnectURL)
	return tw.Flush()
}

func (c *cli) logsCmd() *cobra.Command {
	var follow bool
	var interval time.Duration
	cmd := c.idCmd("logs ID", "Print a session's output", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		out := cmd.OutOrStdout()
		cl := c.client()
		last := ""
		for {
			ctx, cancel := c.ctx(cmd)
			logs, err := cl.SessionLogs(ctx, args[0])
			cancel()
			if err != nil {
				if follow && cmd.Context().Err() != nil {
					return nil
				}
				return err
			}
			if _, err := io.WriteString(out, cleanText(newLogs(last, logs))); err != nil {
				return err
			}
			last = logs
			if !follow {
				return nil
			}
			select {
			case <-cmd.Context().Done():
				return nil
			case <-time.After(interval):
			}
		}
	})
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often -f asks for new output")
	return cmd
}

// newLogs is what cur adds to prev: the new tail when cur continues prev
// (or overlaps its end, when berthd keeps only the latest lines), else all
// of cur.
func newLogs(prev, cur string) string {
	if prev == "" {
		return cur
	}
	if strings.HasPrefix(cur, prev) {
		return cur[len(prev):]
	}
	// berthd returns a bounded tail: find the longest suffix of prev,
	// starting at a line, that cur begins with.
	for i := 0; i < len(prev); i++ {
		if (i == 0 || prev[i-1] == '\n') && strings.HasPrefix(cur, prev[i:]) {
			return cur[len(prev)-i:]
		}
	}
	return cur
}

func (c *cli) eventsCmd() *cobra.Command {
	return c.idCmd("events ID", "Print a session's scheduling events (pull, start, exit)", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		ctx, cancel := c.ctx(cmd)
		defer cancel()
		ev, err := c.client().SessionEvents(ctx, args[0])
		if err != nil {
			return err
		}
		if !strings.HasSuffix(ev, "\n") {
			ev += "\n"
		}
		_, err = io.WriteString(cmd.OutOrStdout(), cleanText(ev))
		return err
	})
}

func (c *cli) renewCmd() *cobra.Command {
	return c.idCmd("renew ID", "Extend a session's expiry", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		ctx, cancel := c.ctx(cmd)
		defer cancel()
		cl := c.client()
		if err := cl.Renew(ctx, args[0]); err != nil {
			return err
		}
		s, err := cl.Session(ctx, args[0])
		if t := parseTime(s.ExpiryTime); err == nil && !t.IsZero() {
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Renewed %s: expires %s.\n", args[0], t.Local().Format(time.DateTime))
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "Renewed %s.\n", args[0])
		return err
	})
}

func (c *cli) deleteCmd() *cobra.Command {
	return c.idCmd("delete ID...", "Stop and remove sessions", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		cl := c.client()
		var errs []error
		for _, id := range args {
			ctx, cancel := c.ctx(cmd)
			err := cl.Delete(ctx, id)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
				continue
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s\n", id)
		}
		return errors.Join(errs...)
	})
}

func (c *cli) openCmd() *cobra.Command {
	var noBrowser bool
	cmd := c.idCmd("open ID", "Print a web session's address and open it in the browser", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		ctx, cancel := c.ctx(cmd)
		defer cancel()
		s, err := c.client().Session(ctx, args[0])
		if err != nil {
			return err
		}
		if s.ConnectURL == "" {
			return fmt.Errorf("%s is a %s session: it has no web address (see `berth logs %s`)", s.ID, s.Type, s.ID)
		}
		if !absoluteURL(s.ConnectURL) {
			return errors.New(noWebListener)
		}
		if s.Status != client.StatusRunning {
			return fmt.Errorf("%s is %s, not Running yet: try again shortly (`berth info %s`)", s.ID, s.Status, s.ID)
		}
		if _, err := fmt.Fprintln(cmd.OutOrStdout(), clean(s.ConnectURL)); err != nil {
			return err
		}
		if noBrowser || (c.getenv("DISPLAY") == "" && c.getenv("WAYLAND_DISPLAY") == "") {
			return nil
		}
		opener, err := exec.LookPath("xdg-open")
		if err != nil {
			return nil
		}
		b := exec.Command(opener, s.ConnectURL)
		b.Stdout, b.Stderr = nil, nil
		if err := b.Start(); err != nil {
			return fmt.Errorf("opening the browser: %w", err)
		}
		// xdg-open hands the URL over and exits; reap it.
		return b.Wait()
	})
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "only print the address")
	return cmd
}

// noWebListener explains a connect URL without a host.
const noWebListener = "Web sessions are reached through berthd's web listener, which is off: set [web] listen in berthd's configuration."

// absoluteURL reports whether u is an http(s) URL with a host.
func absoluteURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// cleanText strips control characters except newlines and tabs.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
