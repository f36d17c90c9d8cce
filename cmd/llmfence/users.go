package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

func newUsersCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Accounts of llmfence serve: create, list, set roles, disable, API tokens",
		Long: `Manage who may use llmfence serve. Roles, from least to most: viewer (read),
operator (scan, schedule, acknowledge, ask to accept a risk, disclose),
approver (approve or reject risk acceptances), admin (users, alert channels).
Passwords are stored as argon2id hashes; there is no default password.`,
	}
	cmd.AddCommand(newUsersCreateCmd(e), newUsersListCmd(e), newUsersRoleCmd(e), newUsersDisableCmd(e), newUsersTokenCmd(e))
	return cmd
}

// readPassword reads a password: from a terminal without echo (twice), or
// the first line of standard input.
func readPassword(e *env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(e.stderr, "again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the two passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, users.MaxPassword+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newUsersCreateCmd(e *env) *cobra.Command {
	var role string
	var admin bool
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user (the password is read without echo, or from standard input)",
		Example: `  llmfence users create --admin alice
  printf '%s\n' "$PASSWORD" | llmfence users create --role operator bob`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if admin {
				role = users.RoleAdmin
			}
			if !users.ValidRole(role) {
				return badKeysArg(fmt.Errorf("--role %q: want %s", role, strings.Join(users.Roles, ", ")))
			}
			pw, err := readPassword(e, "password for "+args[0]+": ")
			if err != nil {
				return badKeysArg(fmt.Errorf("reading the password: %w", err))
			}
			if _, err := users.HashPassword(pw); err != nil {
				return badKeysArg(err)
			}
			st, err := store.OpenServer(cmd.Context(), e.db, store.Options{Logger: e.log})
			if err != nil {
				return err
			}
			defer st.Close()
			u, err := users.Create(cmd.Context(), st, args[0], pw, role)
			if err != nil {
				return err
			}
			_ = st.Audit(cmd.Context(), store.AuditEntry{Actor: "cli:" + currentUser(), Action: "user created", Object: "user:" + u.Name, Detail: "role " + u.Role})
			fmt.Fprintf(e.stdout, "created %s (%s)\n", u.Name, u.Role)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", users.RoleViewer, "role: viewer, operator, approver, admin")
	cmd.Flags().BoolVar(&admin, "admin", false, "same as --role admin")
	return cmd
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func newUsersListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := store.OpenServer(cmd.Context(), e.db, store.Options{Logger: e.log})
			if err != nil {
				return err
			}
			defer st.Close()
			us, err := st.Users(cmd.Context())
			if err != nil {
				return err
			}
			return report.UsersTable(e.stdout, us, report.ListOptions{})
		},
	}
}

func userUpdate(e *env, cmd *cobra.Command, name string, change func(*store.User) error, action string) error {
	st, err := store.OpenServer(cmd.Context(), e.db, store.Options{Logger: e.log})
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByName(cmd.Context(), name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if err := change(&u); err != nil {
		return err
	}
	if err := st.UpdateUser(cmd.Context(), u); err != nil {
		return err
	}
	_ = st.Audit(cmd.Context(), store.AuditEntry{Actor: "cli:" + currentUser(), Action: action, Object: "user:" + u.Name, Detail: "role " + u.Role})
	fmt.Fprintf(e.stdout, "%s: %s\n", u.Name, action)
	return nil
}

func newUsersRoleCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "set-role NAME ROLE",
		Short: "Change a user's role",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !users.ValidRole(args[1]) {
				return badKeysArg(fmt.Errorf("role %q: want %s", args[1], strings.Join(users.Roles, ", ")))
			}
			return userUpdate(e, cmd, args[0], func(u *store.User) error { u.Role = args[1]; return nil }, "role set to "+args[1])
		},
	}
}

func newUsersDisableCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable a user and end their sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userUpdate(e, cmd, args[0], func(u *store.User) error { u.Disabled = true; return nil }, "disabled")
		},
	}
}

func newUsersTokenCmd(e *env) *cobra.Command {
	var name, expires string
	cmd := &cobra.Command{
		Use:   "token USER",
		Short: "Create an API token for scripts (printed once; send it as Authorization: Bearer TOKEN)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var exp time.Time
			if expires != "" {
				d, err := parseLongDuration(expires)
				if err != nil || d <= 0 {
					return badKeysArg(fmt.Errorf("--expires %q: want a positive duration such as 720h or 30d", expires))
				}
				exp = time.Now().Add(d)
			}
			st, err := store.OpenServer(cmd.Context(), e.db, store.Options{Logger: e.log})
			if err != nil {
				return err
			}
			defer st.Close()
			u, err := st.UserByName(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("user %q: %w", args[0], err)
			}
			tok, hash := users.NewToken("lft_")
			if err := st.CreateAPIToken(cmd.Context(), u.ID, name, hash, exp); err != nil {
				return err
			}
			_ = st.Audit(cmd.Context(), store.AuditEntry{Actor: "cli:" + currentUser(), Action: "API token created", Object: "user:" + u.Name, Detail: name})
			fmt.Fprintln(e.stdout, tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "cli", "what the token is for")
	cmd.Flags().StringVar(&expires, "expires", "", "the token expires after this `DURATION` (e.g. 90d; default never)")
	return cmd
}
