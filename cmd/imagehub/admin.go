package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"imagehub/store"
)

// userAddCmd creates a user; the password comes from IMAGEHUB_PASSWORD or the
// first line of standard input, never from a flag that `ps` would show.
func userAddCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	data := fs.String("data", envOr("IMAGEHUB_DATA", "./data"), "data folder")
	user := fs.String("user", "", "username")
	admin := fs.Bool("admin", false, "make the user an administrator")
	if err := fs.Parse(args); err != nil {
		return err
	}
	password := os.Getenv("IMAGEHUB_PASSWORD")
	if password == "" {
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if password = strings.TrimRight(line, "\r\n"); password == "" {
			return fmt.Errorf("give the password in IMAGEHUB_PASSWORD or on the first line of standard input")
		}
	}
	_, st, err := openDataDir(*data)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CreateUser(ctx, &store.User{Username: *user, Password: password, Admin: *admin}); err != nil {
		return fmt.Errorf("%v", describe(err))
	}
	fmt.Fprintf(stdout, "created user %s\n", *user)
	return nil
}

// tokenCreateCmd prints a new API token for a user as its last line.
func tokenCreateCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	data := fs.String("data", envOr("IMAGEHUB_DATA", "./data"), "data folder")
	user := fs.String("user", "", "username")
	scope := fs.String("scope", "admin", "admin (all the user may do) or read (GET only)")
	name := fs.String("name", "cli", "a label to recognise the token by")
	days := fs.Int("expires-days", 0, "days until the token stops working; 0: never")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var expiresAt *time.Time
	if *days < 0 {
		return fmt.Errorf("--expires-days must be 0 (never) or more")
	} else if *days > 0 {
		t := time.Now().AddDate(0, 0, *days)
		expiresAt = &t
	}
	_, st, err := openDataDir(*data)
	if err != nil {
		return err
	}
	defer st.Close()
	value, _, err := st.CreateTokenExpiring(ctx, *user, *name, store.TokenScope(*scope), expiresAt)
	if err != nil {
		return fmt.Errorf("%v", describe(err))
	}
	fmt.Fprintln(stdout, value)
	return nil
}

// describe turns a store error into a sentence for the terminal.
func describe(err error) string {
	msg := store.ErrorMessage(err)
	if store.ErrorCode(err) == store.EINTERNAL {
		msg = err.Error()
	}
	for f, r := range store.ErrorFields(err) {
		msg += fmt.Sprintf(" %s: %s", f, r)
	}
	return msg
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
