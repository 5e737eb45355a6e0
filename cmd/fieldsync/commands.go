package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/demo"
	"github.com/fieldsync/fieldsync/migrations"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

func cmdServe(ctx context.Context, cfg config, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (FIELDSYNC_ADDR)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "PostgreSQL URL (DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.validateServe(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(cfg, stderr)
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	stopPprof, err := startPprof(cfg.PprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	pool, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.MigrateOnStart {
		if err := migrate(ctx, pool); err != nil {
			return err
		}
	}
	keys, err := loadKeys(cfg, log)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, pool, keys, log, ln)
}

// withDB runs fn over a database connection for the admin commands.
func withDB(ctx context.Context, cfg config, fn func(*pgxpool.Pool) error) error {
	if err := cfg.validateDatabase(); err != nil {
		return err
	}
	pool, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(pool)
}

// withAccounts runs fn over the account service, for commands that manage branches and users.
// Such commands never sign tokens, so they get a throwaway key.
func withAccounts(ctx context.Context, cfg config, stderr io.Writer, fn func(*account.Service) error) error {
	return withAccountsDB(ctx, cfg, stderr, func(_ *pgxpool.Pool, svc *account.Service) error { return fn(svc) })
}

// withAccountsDB is withAccounts for commands that also need the database itself.
func withAccountsDB(ctx context.Context, cfg config, stderr io.Writer, fn func(*pgxpool.Pool, *account.Service) error) error {
	return withDB(ctx, cfg, func(pool *pgxpool.Pool) error {
		keys, err := account.ParseKeys(mustKeyPEM())
		if err != nil {
			return err
		}
		svc, err := account.NewService(pool, keys, accountConfig(cfg), newLogger(cfg, stderr))
		if err != nil {
			return err
		}
		return fn(pool, svc)
	})
}

func mustKeyPEM() []byte {
	pem, err := account.GenerateKeyPEM()
	if err != nil {
		panic(err)
	}
	return pem
}

func cmdMigrate(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "status") {
		fmt.Fprintln(stderr, "fieldsync migrate takes up or status")
		return errUsage
	}
	return withDB(ctx, cfg, func(pool *pgxpool.Pool) error {
		if args[0] == "up" {
			if err := migrate(ctx, pool); err != nil {
				return err
			}
			fmt.Fprintln(stderr, "migrations applied")
			return nil
		}
		db := stdlib.OpenDBFromPool(pool)
		defer db.Close()
		return migrations.Status(ctx, db, stdout)
	})
}

func cmdBranch(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "create":
		fs := newFlags("branch create", stderr)
		name := fs.String("name", "", "branch name")
		tz := fs.String("time-zone", account.DefaultTimeZone, "IANA time zone of the branch's dates, such as Asia/Shanghai")
		cur := fs.String("currency", account.DefaultCurrency, "ISO 4217 currency of the branch's amounts, such as CNY")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return withAccounts(ctx, cfg, stderr, func(svc *account.Service) error {
			b, err := svc.AddBranch(ctx, account.NewBranch{Name: *name, TimeZone: *tz, Currency: *cur})
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, b.ID)
			return nil
		})
	case "set":
		fs := newFlags("branch set", stderr)
		id := fs.String("id", "", "branch id")
		tz := fs.String("time-zone", "", "new IANA time zone (unchanged if empty)")
		cur := fs.String("currency", "", "new ISO 4217 currency (unchanged if empty)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		branchID, err := uuid.Parse(*id)
		if err != nil {
			return fmt.Errorf("--id %q is not a branch id", *id)
		}
		return withAccounts(ctx, cfg, stderr, func(svc *account.Service) error {
			b, err := svc.SetBranchFormats(ctx, branchID, *tz, *cur)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", b.ID, b.Name, b.TimeZone, b.Currency)
			return nil
		})
	case "list":
		return withAccounts(ctx, cfg, stderr, func(svc *account.Service) error {
			branches, err := svc.ListBranches(ctx)
			if err != nil {
				return err
			}
			for _, b := range branches {
				fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", b.ID, b.Name, b.TimeZone, b.Currency)
			}
			return nil
		})
	}
	return errUsage
}

// readPassword reads one line from stdin: the password, without its line ending.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(stdin, account.MaxPasswordBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func cmdUser(ctx context.Context, cfg config, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := newFlags("user "+args[0], stderr)
	login := fs.String("login", "", "login name")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	switch args[0] {
	case "create":
		branch := fs.String("branch", "", "branch id (not for admin or integration)")
		role := fs.String("role", "", "rep, processor, manager, admin or integration")
		repKind := fs.String("rep-kind", "", "for reps: agent (default) or hospital")
		name := fs.String("name", "", "full name")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var branchID uuid.UUID
		if *branch != "" {
			var err error
			if branchID, err = uuid.Parse(*branch); err != nil {
				return fmt.Errorf("--branch %q is not a branch id", *branch)
			}
		}
		if !*passwordStdin {
			return errors.New("give the password on stdin with --password-stdin (never on the command line)")
		}
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		return withAccounts(ctx, cfg, stderr, func(svc *account.Service) error {
			id, err := svc.CreateUser(ctx, account.NewUser{BranchID: branchID, Role: *role, RepKind: *repKind,
				Login: *login, Name: *name, Password: password})
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, id)
			return nil
		})
	case "locale":
		locale := fs.String("locale", "", "language: "+strings.Join(account.Locales, " or ")+"; empty follows the browser's")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return withAccounts(ctx, cfg, stderr, func(svc *account.Service) error {
			id, err := svc.FindUserIDByLogin(ctx, *login)
			if err != nil {
				return err
			}
			return svc.SetUserLocale(ctx, id, *locale)
		})
	case "disable":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return withAccounts(ctx, cfg, stderr, func(svc *account.Service) error {
			id, err := svc.FindUserIDByLogin(ctx, *login)
			if err != nil {
				return err
			}
			return svc.DisableUser(ctx, id)
		})
	case "reset-password":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if !*passwordStdin {
			return errors.New("give the new password on stdin with --password-stdin")
		}
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		return withAccounts(ctx, cfg, stderr, func(svc *account.Service) error {
			id, err := svc.FindUserIDByLogin(ctx, *login)
			if err != nil {
				return err
			}
			return svc.ResetPassword(ctx, id, password)
		})
	}
	return errUsage
}

func cmdDemo(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	if err := newFlags("demo", stderr).Parse(args); err != nil {
		return err
	}
	return withAccountsDB(ctx, cfg, stderr, func(pool *pgxpool.Pool, svc *account.Service) error {
		d, err := demo.Seed(ctx, pool, svc)
		if err != nil {
			return err
		}
		d.Print(stdout, "")
		return nil
	})
}

func cmdKeygen(args []string, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("o", "", "file to write the new key to (must not exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("keygen needs -o FILE")
	}
	return writeNewKey(*out)
}
