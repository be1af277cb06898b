package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-edge/berth/daemon/client"
)

func (c *cli) catalogCmds() []*cobra.Command {
	return []*cobra.Command{c.imagesCmd(), c.contextCmd(), c.profilesCmd(), c.registryCmd()}
}

func (c *cli) imagesCmd() *cobra.Command {
	var typ string
	var tree bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images sessions can be launched from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			out := cmd.OutOrStdout()
			q := ""
			if typ != "" {
				q = "?type=" + typ
			}
			if tree {
				if c.json {
					return c.printRaw(ctx, out, "/api/v1/menu"+q)
				}
				menu, err := c.client().Menu(ctx, typ)
				if err != nil {
					return err
				}
				return printMenu(out, menu)
			}
			if c.json {
				return c.printRaw(ctx, out, "/api/v1/image"+q)
			}
			imgs, err := c.client().Images(ctx, typ)
			if err != nil {
				return err
			}
			return printImages(out, imgs)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "only images of this session type")
	cmd.Flags().BoolVar(&tree, "tree", false, "show the catalog as the desktop menu does: project, then image:version")
	_ = cmd.RegisterFlagCompletionFunc("type", completeTypes)
	return cmd
}

// emptyImages is what `berth images` says when the catalog is empty.
const emptyImages = "No images. Images labelled berth.types (or an admin's registries and profiles) appear here."

func printImages(out io.Writer, imgs []client.Image) error {
	if len(imgs) == 0 {
		_, err := fmt.Fprintln(out, emptyImages)
		return err
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "IMAGE\tTYPES\tSOURCE")
	for _, im := range imgs {
		id := im.ID
		if im.Profile != "" {
			id += " (profile " + im.Profile + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", orDash(id), orDash(strings.Join(im.Types, ",")), orDash(im.Source))
	}
	return tw.Flush()
}

// printMenu draws the catalog as a tree.
func printMenu(out io.Writer, menu []client.MenuProject) error {
	if len(menu) == 0 {
		_, err := fmt.Fprintln(out, emptyImages)
		return err
	}
	w := bufio.NewWriter(out)
	for _, p := range menu {
		fmt.Fprintln(w, clean(p.Name))
		for i, it := range p.Items {
			branch := "├── "
			if i == len(p.Items)-1 {
				branch = "└── "
			}
			extra := strings.Join(it.Types, ",")
			if it.Profile != "" {
				extra += ", profile " + it.Profile
			}
			fmt.Fprintf(w, "%s%s  (%s)  %s\n", branch, clean(it.Label), clean(extra), clean(it.Image))
		}
	}
	return w.Flush()
}

func (c *cli) contextCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "context",
		Short: "Show the cores and memory a session may ask for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			if c.json {
				return c.printRaw(ctx, cmd.OutOrStdout(), "/api/v1/context")
			}
			cx, err := c.client().Context(ctx)
			if err != nil {
				return err
			}
			return printContext(cmd.OutOrStdout(), cx)
		},
	}
}

func printContext(out io.Writer, cx client.Context) error {
	tw := newTable(out)
	ints := func(v []int) string {
		if len(v) == 0 {
			return "none"
		}
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, " ")
	}
	fmt.Fprintf(tw, "Cores:\t%s\t(default %d)\n", ints(cx.Cores.Options), cx.Cores.Default)
	fmt.Fprintf(tw, "Memory (GB):\t%s\t(default %d)\n", ints(cx.MemoryGB.Options), cx.MemoryGB.Default)
	fmt.Fprintf(tw, "GPUs:\t%s\t\n", ints(cx.GPUs.Options))
	if cx.MaxInteractiveSessions > 0 {
		fmt.Fprintf(tw, "Sessions:\tat most %d interactive per user\t\n", cx.MaxInteractiveSessions)
	}
	return tw.Flush()
}

func (c *cli) profilesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "profiles",
		Short: "List the profiles an administrator defined (launch one with `berth run`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			if c.json {
				return c.printRaw(ctx, cmd.OutOrStdout(), "/api/v1/profiles")
			}
			ps, err := c.client().Profiles(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(ps) == 0 {
				_, err := fmt.Fprintln(out, "No profiles. An administrator defines them in berthd's configuration.")
				return err
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tTYPE\tIMAGE\tCORES\tRAM\tDESCRIPTION")
			for _, p := range ps {
				cores, ram := "-", "-"
				if p.Cores > 0 {
					cores = strconv.Itoa(p.Cores)
				}
				if p.RAMGB > 0 {
					ram = strconv.Itoa(p.RAMGB) + "G"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", orDash(p.Name), orDash(p.Type), orDash(p.Image), cores, ram, clean(p.Description))
			}
			return tw.Flush()
		},
	}
}

func (c *cli) registryCmd() *cobra.Command {
	reg := &cobra.Command{
		Use:   "registry",
		Short: "Manage the registry credentials berthd pulls private images with (admins)",
	}
	var server, username string
	var stdin bool
	add := &cobra.Command{
		Use:   "add NAME --server HOST --username USER --password-stdin",
		Short: "Store a registry credential (the password is read from standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if server == "" {
				return errors.New("--server is required (the registry host, e.g. images.example.org)")
			}
			if !stdin {
				return errors.New("pass the password on standard input with --password-stdin (never on the command line)")
			}
			pw, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			if err := c.client().PutRegistry(ctx, args[0], client.RegistryCredential{Server: server, Username: username, Password: pw}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Stored %s for %s\n", args[0], server)
			return err
		},
	}
	add.Flags().StringVar(&server, "server", "", "registry host")
	add.Flags().StringVar(&username, "username", "", "user name")
	add.Flags().BoolVar(&stdin, "password-stdin", false, "read the password (or token) from standard input")
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the stored registry credentials",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			if c.json {
				return c.printRaw(ctx, cmd.OutOrStdout(), "/api/v1/registries")
			}
			rs, err := c.client().Registries(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(rs) == 0 {
				_, err := fmt.Fprintln(out, "No registry credentials. Add one with `berth registry add NAME --server HOST --username USER --password-stdin`.")
				return err
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tSERVER\tUSERNAME")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", orDash(r.Name), orDash(r.Server), orDash(r.Username))
			}
			return tw.Flush()
		},
	}
	rm := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "Remove a registry credential",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			rs, err := c.client().Registries(ctx)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, r := range rs {
				out = append(out, cobra.CompletionWithDesc(r.Name, clean(r.Server)))
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			if err := c.client().DeleteRegistry(ctx, args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Removed %s\n", args[0])
			return err
		},
	}
	reg.AddCommand(add, list, rm)
	return reg
}

// readPassword reads the first line of r (a password piped in).
func readPassword(r io.Reader) (string, error) {
	br := bufio.NewReader(io.LimitReader(r, 64<<10))
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on standard input")
	}
	return pw, nil
}
