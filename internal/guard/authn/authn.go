// Package authn provides extra authenticators for the llmfence gateway
// (package guard): OpenID Connect / OAuth 2 JWT bearer tokens verified
// against the issuer's discovery document and JWKS, and Chain, which sends
// llmfence API keys (lf_...) to the key store and every other bearer to
// OIDC.
package authn

import (
	"context"
	"fmt"
	"strings"

	"github.com/llmfence/llmfence/internal/guard"
	"github.com/llmfence/llmfence/internal/guard/keys"
)

// Chain authenticates llmfence API keys (those starting with keys.Prefix)
// with apiKeys and any other bearer with tokens. A nil tokens sends
// everything to apiKeys, which refuses what is not a key.
func Chain(apiKeys, tokens guard.Authenticator) guard.Authenticator {
	return guard.AuthenticatorFunc(func(ctx context.Context, presented string) (*guard.Principal, error) {
		if tokens == nil || strings.HasPrefix(presented, keys.Prefix) {
			if apiKeys == nil {
				return nil, fmt.Errorf("%w: API keys are not accepted here", guard.ErrInvalidKey)
			}
			return apiKeys.Authenticate(ctx, presented)
		}
		return tokens.Authenticate(ctx, presented)
	})
}
