package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/sandbox"
	"github.com/mpauth/mpauth/internal/token"
)

// migrateCmd creates or upgrades the schema (or prints the plan).
func migrateCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "print the SQL the migration would run, without running it")
	bc, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	d, err := data.Open(bc.Data, log.NewFilter(newLogger(bc, os.Stderr), log.FilterLevel(log.LevelWarn)))
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if *dry {
		return d.MigrationPlan(ctx, stdout)
	}
	if err := d.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema is up to date (%s)\n", d.Dialect())
	return nil
}

// sandboxCmd mints a login code from a running sandbox.
func sandboxCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "code" {
		return fmt.Errorf("usage: mpauth sandbox code -app-id ID -user NAME [-platform wechat] [-url URL | -conf FILE]")
	}
	fs := flag.NewFlagSet("sandbox code", flag.ContinueOnError)
	platform := fs.String("platform", "wechat", "platform")
	appID := fs.String("app-id", "", "app id (default: the first app in the config)")
	user := fs.String("user", "", "sandbox user name, e.g. alice")
	url := fs.String("url", "", "sandbox URL (default: sandbox.addr from the config)")
	confPath := fs.String("conf", defaultConf, "config file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *user == "" {
		return fmt.Errorf("-user is required (any name: the same name is the same sandbox person)")
	}
	if *url == "" || *appID == "" {
		bc, err := loadConfigFile(*confPath)
		if err != nil {
			return err
		}
		if *url == "" {
			*url = "http://" + bc.Sandbox.Addr
		}
		if *appID == "" {
			for _, a := range bc.Apps {
				if a.Platform == *platform {
					*appID = a.AppId
					break
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := sandbox.MintCode(ctx, *url, *platform, *appID, *user)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, code)
	return nil
}

// keygenCmd prints a new Ed25519 private key for auth.keys.
func keygenCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	kid := fs.String("kid", time.Now().UTC().Format("2006-01-02"), "key id to suggest in the config snippet")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pemBytes, err := token.NewEd25519PEM()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# kid: %s — store this file as a secret and point auth.keys[].private_key_file at it\n", *kid)
	_, err = stdout.Write(pemBytes)
	return err
}
