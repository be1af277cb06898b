package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-edge/berth/daemon/client"
)

// cli holds the global flags and what the commands share.
type cli struct {
	socket  string
	json    bool
	timeout time.Duration
	version string
	now     func() time.Time
	getenv  func(string) string
}

// newRootCmd builds the whole command tree. getenv supplies BERTH_SOCKET.
func newRootCmd(getenv func(string) string, version string) *cobra.Command {
	c := &cli{version: version, now: time.Now, getenv: getenv}
	defSocket := client.DefaultSocket
	if s := getenv("BERTH_SOCKET"); s != "" {
		defSocket = s
	}
	root := &cobra.Command{
		Use:   "berth",
		Short: "Launch sessions and show what berthd runs on this box",
		Long: "berth talks to berthd, the Berth edge daemon, over its local socket.\n" +
			"Members of the berth group (and root) may use it.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate("berth {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see `%s --help`)", err, cmd.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&c.socket, "socket", defSocket, "berthd's local API socket (env BERTH_SOCKET)")
	pf.BoolVar(&c.json, "json", false, "print the raw JSON answer")
	pf.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up on berthd after this long")

	root.AddCommand(c.statusCmd(), c.appsCmd(), c.topCmd(), c.versionCmd())
	root.AddCommand(c.sessionCmds()...)
	root.AddCommand(c.catalogCmds()...)
	return root
}

func (c *cli) client() *client.Client { return client.New(c.socket) }

// ctx bounds one command's calls by --timeout.
func (c *cli) ctx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// printRaw fetches path and prints berthd's JSON answer, indented.
func (c *cli) printRaw(ctx context.Context, w io.Writer, path string) error {
	var raw json.RawMessage
	if err := c.client().Get(ctx, path, &raw); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("berthd answered invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions of berth and of the running berthd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
			defer cancel()
			daemon, derr := "", error(nil)
			st, err := c.client().Status(ctx)
			if err != nil {
				derr = err
			} else {
				daemon = st.Version
			}
			w := cmd.OutOrStdout()
			if c.json {
				v := struct {
					Client string `json:"client"`
					Daemon string `json:"daemon,omitempty"`
				}{c.version, daemon}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			if _, err := fmt.Fprintf(w, "berth  %s\n", c.version); err != nil {
				return err
			}
			if derr != nil {
				_, err := fmt.Fprintf(w, "berthd unknown (%v)\n", derr)
				return err
			}
			_, err = fmt.Fprintf(w, "berthd %s\n", clean(daemon))
			return err
		},
	}
}
