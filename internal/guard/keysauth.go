package guard

import (
	"context"
	"errors"
	"fmt"

	"github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/guard/limits"
)

// KeysAuthenticator authenticates against the key manager of package keys
// (keys stored as hashes, constant-time comparison, expiry and revocation
// honoured within the manager's short cache).
func KeysAuthenticator(m *keys.Manager) Authenticator {
	return AuthenticatorFunc(func(ctx context.Context, presented string) (*Principal, error) {
		k, err := m.Authenticate(ctx, presented)
		if err != nil {
			if errors.Is(err, keys.ErrUnauthenticated) {
				return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
			}
			return nil, fmt.Errorf("reading API keys: %w", err)
		}
		return principalOf(k), nil
	})
}

func principalOf(k *keys.Key) *Principal {
	p := &Principal{ID: k.ID, Name: k.Name, Admin: k.Admin, AllowCloud: k.AllowCloud,
		Models: append([]string(nil), k.Models...)}
	l := limits.Limits(k.Limits)
	if l != (limits.Limits{}) {
		p.Limits = &l
	}
	return p
}
