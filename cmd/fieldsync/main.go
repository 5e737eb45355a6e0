// Command fieldsync is the offline-first sync backend for insurance field service, and the tools
// to run it: serve, migrate, user, branch, demo, dev, keygen, healthcheck, version and openapi. Run
// `fieldsync help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `fieldsync: offline-first sync backend for insurance field service

Usage:
  fieldsync dev                          run everything locally for a newcomer (database, object store, demo data, server)
  fieldsync serve                        run the API server (configured by environment, see README)
  fieldsync migrate up|status            apply or list database migrations
  fieldsync branch create --name NAME [--time-zone Asia/Shanghai] [--currency CNY]
                                         create a branch (default UTC, CNY); prints its id
  fieldsync branch set --id ID [--time-zone TZ] [--currency CUR]
                                         change a branch's time zone or currency
  fieldsync branch list                  list branches (id, name, time zone, currency)
  fieldsync user create --branch ID --role ROLE --login LOGIN --name NAME --password-stdin [--rep-kind agent|hospital]
                                         create a user; prints its id
  fieldsync user locale --login LOGIN --locale en|zh-CN
                                         set the language a user reads the product in (empty: the browser's)
  fieldsync user disable --login LOGIN   disable a user and end their sessions
  fieldsync user reset-password --login LOGIN --password-stdin
                                         set a new password and end the user's sessions
  fieldsync demo                         seed a demo branch, users, customers and a claim; prints the logins
  fieldsync keygen -o FILE               write a new Ed25519 key for signing access tokens
  fieldsync healthcheck [--url URL] [--timeout D]
                                         exit 0 if the server answers 200 on /readyz (default: FIELDSYNC_ADDR on loopback), else 1
  fieldsync version                      print the version this binary was built from
  fieldsync openapi                      print the API's OpenAPI description (as served at /openapi.json)
  fieldsync sim [--server URL] [--devices N] [--duration D] [--seed N] [--flaky F] [--login L,...] [--password P]
                                         simulate phones against a running server (make dev) and check that they converge
  fieldsync bench [--quick] [--devices N] [--writers N] [--duration D] [--out FILE] [--cpuprofile FILE]
                                         measure a server (started for the run, over a database and bucket of its own) against raw baselines
`

// errUsage marks a command line that could not be understood; main exits with 2 for it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "fieldsync:", err)
		os.Exit(1)
	}
}

// run executes one command line. Output meant for scripts (new ids) goes to stdout alone; logs and
// messages for people go to stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cfg, err := loadConfig(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, cfg, rest, stderr)
	case "dev":
		return cmdDev(ctx, cfg, rest, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, cfg, rest, stdout, stderr)
	case "branch":
		return cmdBranch(ctx, cfg, rest, stdout, stderr)
	case "user":
		return cmdUser(ctx, cfg, rest, stdin, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, cfg, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, cfg, rest, stdout, stderr)
	case "keygen":
		return cmdKeygen(rest, stderr)
	case "sim":
		return cmdSim(ctx, rest, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, cfg, rest, stdout, stderr)
	case "version":
		return cmdVersion(rest, stdout)
	case "openapi":
		return cmdOpenAPI(rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n", cmd)
	return errUsage
}

// newFlags returns a flag set for a subcommand that reports errors to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fieldsync "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
