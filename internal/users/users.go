// Package users provides accounts for llmfence serve: argon2id password
// hashes, roles, session and API tokens (random, stored only as SHA-256),
// CSRF tokens bound to sessions, one-time setup tokens, and OIDC group to
// role mapping.
//
// There is no default password. The first admin comes from `llmfence
// users create --admin` or from a one-time setup token printed when serve
// starts with no user.
package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/llmfence/llmfence/internal/store"
)

// Roles, from least to most trusted. Each role may do what the ones
// before it may.
const (
	RoleViewer   = "viewer"   // read everything
	RoleOperator = "operator" // scan, schedule, acknowledge, tag, snooze, ask to accept a risk, disclose
	RoleApprover = "approver" // approve or reject risk acceptances
	RoleAdmin    = "admin"    // users, alert channels, settings
)

// Roles in order.
var Roles = []string{RoleViewer, RoleOperator, RoleApprover, RoleAdmin}

// Rank orders roles; an unknown role ranks below viewer.
func Rank(role string) int {
	for i, r := range Roles {
		if r == role {
			return i + 1
		}
	}
	return 0
}

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool { return Rank(role) > 0 }

// Allowed reports whether a user with role may act as need.
func Allowed(role, need string) bool { return Rank(role) >= Rank(need) && Rank(role) > 0 }

// Argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes,
// one lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	// MinPassword is the shortest password accepted.
	MinPassword = 12
	// MaxPassword bounds the work of hashing a presented password.
	MaxPassword = 1024
)

// ErrBadPassword: a password too short or too long.
var ErrBadPassword = fmt.Errorf("a password has %d to %d characters", MinPassword, MaxPassword)

// HashPassword returns the PHC string of password under argon2id.
func HashPassword(password string) (string, error) {
	if n := len([]rune(password)); n < MinPassword || len(password) > MaxPassword {
		return "", ErrBadPassword
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a PHC argon2id hash, in
// constant time for a given hash. A malformed hash never matches.
func CheckPassword(hash, password string) bool {
	if len(password) > MaxPassword {
		return false
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 10 || p == 0 || p > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NewToken returns a random token (for a cookie, an API token, a setup
// token) and the hash the store keeps.
func NewToken(prefix string) (token, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is the stored form of a token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SameToken compares two tokens in constant time.
func SameToken(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Errors of Authenticate.
var ErrLogin = errors.New("wrong user name or password")

// dummyHash is checked against when a user does not exist, so a wrong name
// costs as long as a wrong password.
var dummyHash, _ = HashPassword("llmfence-no-such-user-password")

// Authenticate checks a name and password.
func Authenticate(ctx context.Context, st store.UserStore, name, password string) (store.User, error) {
	u, err := st.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		CheckPassword(dummyHash, password)
		return store.User{}, ErrLogin
	}
	if err != nil {
		return store.User{}, err
	}
	if u.Disabled || u.PasswordHash == "" || !CheckPassword(u.PasswordHash, password) {
		return store.User{}, ErrLogin
	}
	return u, nil
}

// Create makes a user with a password.
func Create(ctx context.Context, st store.UserStore, name, password, role string) (store.User, error) {
	if !ValidRole(role) {
		return store.User{}, fmt.Errorf("role %q: want %s", role, strings.Join(Roles, ", "))
	}
	h, err := HashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	return st.CreateUser(ctx, store.User{Name: name, PasswordHash: h, Role: role})
}

// SetupToken creates a one-time setup token valid for ttl.
func SetupToken(ctx context.Context, st store.UserStore, ttl time.Duration) (string, error) {
	tok, h := NewToken("lfsetup_")
	if err := st.CreateSetupToken(ctx, h, time.Now().Add(ttl)); err != nil {
		return "", err
	}
	return tok, nil
}

// GroupRoles maps OIDC groups to roles: the highest role of any group the
// user is in; "" when none matches (the user is refused).
type GroupRoles map[string]string

// ParseGroupRoles reads "group=role,group2=role2".
func ParseGroupRoles(s string) (GroupRoles, error) {
	out := GroupRoles{}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		g, r, ok := strings.Cut(kv, "=")
		if !ok || g == "" || !ValidRole(r) {
			return nil, fmt.Errorf("group mapping %q: want GROUP=ROLE with ROLE one of %s", kv, strings.Join(Roles, ", "))
		}
		out[g] = r
	}
	return out, nil
}

// Role returns the role for a user's groups.
func (g GroupRoles) Role(groups []string) string {
	best := ""
	for _, grp := range groups {
		if r, ok := g[grp]; ok && Rank(r) > Rank(best) {
			best = r
		}
	}
	return best
}
