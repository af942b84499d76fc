package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/distq/distq/client"
)

// defaultURL is the api of `make run`.
const defaultURL = "http://127.0.0.1:8080"

// app is one invocation of distqctl: its streams, its environment and the
// settings resolved from flags, environment and config file.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// userConfigDir is os.UserConfigDir; tests point it elsewhere.
	userConfigDir func() (string, error)
	// isTerminal reports whether w is a terminal (progress bar or lines).
	isTerminal func(w io.Writer) bool

	// Flags of the root command.
	flagURL, flagToken, flagConfig, output string
	// flagAdminToken is the operator's token of the admin commands.
	flagAdminToken string

	cfg fileConfig // resolved settings
}

// fileConfig is the config file's content, and the resolved settings.
type fileConfig struct {
	URL     string `yaml:"url"`
	Token   string `yaml:"token"`
	Account string `yaml:"account"`
	Output  string `yaml:"output"`
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{
		stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		userConfigDir: os.UserConfigDir,
		isTerminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		},
	}
}

// run runs distqctl with args and returns its exit code.
func run(ctx context.Context, args []string, a *app) int {
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := exitCode(ctx, err)
	switch {
	case err == nil:
	case errors.Is(err, errItems), errors.As(err, new(*reportedError)):
		// The command printed what did not succeed.
	case code == ExitInterrupted:
		var ie *interruptedError
		if !errors.As(err, &ie) {
			err = &interruptedError{}
		}
		fmt.Fprintln(a.stderr, "distqctl:", err)
	default:
		fmt.Fprintln(a.stderr, "distqctl:", err)
	}
	return code
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "distqctl",
		Short: "Distribute Alibaba Cloud IoT products through distq",
		Long: `distqctl submits products to distq, one or a file of thousands, follows the
batches with a progress bar, and gets, lists, cancels and retries them.
Operators pause, resume and tune accounts and teams with distqctl admin.

Settings come from flags, then DISTQ_URL / DISTQ_TOKEN, then the config file
(` + "`<user config dir>/distq/config.yaml`" + `, or --config / DISTQ_CONFIG).

Exit codes: 0 all done (with --wait: all succeeded); 1 usage or config error;
2 some items failed, were rejected or were bad lines; 3 interrupted;
4 server unreachable or unavailable; 5 the API refused the request.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(*cobra.Command, []string) error { return a.loadConfig() },
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	f := root.PersistentFlags()
	f.StringVar(&a.flagURL, "url", "", "distq API URL (env DISTQ_URL; default "+defaultURL+")")
	f.StringVar(&a.flagToken, "token", "", "API bearer token (env DISTQ_TOKEN)")
	f.StringVar(&a.flagConfig, "config", "", "config file (env DISTQ_CONFIG; default <user config dir>/distq/config.yaml)")
	f.StringVarP(&a.output, "output", "o", "", "output format: table or json (default table)")
	root.AddCommand(a.submitCmd(), a.watchCmd(), a.getCmd(), a.listCmd(), a.cancelCmd(), a.retryCmd(), a.adminCmd(), a.devicesCmd())
	return root
}

// configPath returns the config file to read and whether it was named
// explicitly (then it must exist).
func (a *app) configPath() (string, bool, error) {
	if p := cmp.Or(a.flagConfig, a.getenv("DISTQ_CONFIG")); p != "" {
		return p, true, nil
	}
	dir, err := a.userConfigDir()
	if err != nil {
		return "", false, nil // no home: no default file
	}
	return filepath.Join(dir, "distq", "config.yaml"), false, nil
}

// loadConfig resolves the settings: flags, then environment, then the
// config file, then defaults.
func (a *app) loadConfig() error {
	path, explicit, err := a.configPath()
	if err != nil {
		return err
	}
	var file fileConfig
	if path != "" {
		raw, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		case err != nil:
			return usagef("config file: %v", err)
		default:
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			dec.KnownFields(true)
			if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
				return usagef("config file %s: %v (keys: url, token, account, output)", path, err)
			}
		}
	}
	a.cfg = fileConfig{
		URL:     cmp.Or(a.flagURL, a.getenv("DISTQ_URL"), file.URL, defaultURL),
		Token:   cmp.Or(a.flagToken, a.getenv("DISTQ_TOKEN"), file.Token),
		Account: file.Account,
		Output:  cmp.Or(a.output, a.getenv("DISTQ_OUTPUT"), file.Output, "table"),
	}
	if a.cfg.Output != "table" && a.cfg.Output != "json" {
		return usagef("--output must be table or json, got %q", a.cfg.Output)
	}
	if !strings.HasPrefix(a.cfg.URL, "http://") && !strings.HasPrefix(a.cfg.URL, "https://") {
		return usagef("the server URL must start with http:// or https://, got %q", a.cfg.URL)
	}
	return nil
}

// api returns an API client, or a usage error when no token is set.
func (a *app) api() (*client.Client, error) {
	if a.cfg.Token == "" {
		path, _, _ := a.configPath()
		return nil, usagef("no API token: pass --token, set DISTQ_TOKEN, or put `token: …` in %s", cmp.Or(path, "the config file"))
	}
	// The retries are for a 429 (after its Retry-After) and, for requests
	// safe to repeat, a transport error.
	return client.New(a.cfg.URL, a.cfg.Token, client.WithRetries(4), client.WithUserAgent("distqctl"),
		client.WithHTTPClient(&http.Client{Timeout: 2 * time.Minute})), nil
}

func (a *app) jsonOutput() bool { return a.cfg.Output == "json" }
