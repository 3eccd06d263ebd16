package api

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/piot-appliance/piot/services/core"
)

// Claims are the registered claims plus the user's token version. ID
// (jti) names one session, so signing out can revoke it alone.
type Claims struct {
	jwt.RegisteredClaims
	Version int64 `json:"ver"`
}

// Tokens mints and checks the appliance's session tokens: HS256 only,
// with sub (user id), jti, iat and exp always present. The composition
// root builds one and hands it to the API and the web manager, so both
// sign with the same key and refuse the same tokens.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// Token is a signed token with what its holder needs to store it.
type Token struct {
	Value   string
	ID      string // jti
	Expires time.Time
}

const issuer = "piot"

// NewTokens checks the key and lifetime; now nil is time.Now.
func NewTokens(key []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(key) < 32 {
		return nil, errors.New("api: JWT key must have at least 32 bytes")
	}
	if ttl <= 0 {
		return nil, errors.New("api: JWT TTL must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{key: key, ttl: ttl, now: now}, nil
}

// Issue signs a token for the actor.
func (t *Tokens) Issue(a core.Actor) (Token, error) {
	// A random ObjectID: core keys its revocation list by ObjectIDs, and
	// random bytes make the id as unguessable as it is unique.
	var jti core.ID
	if _, err := rand.Read(jti[:]); err != nil {
		return Token{}, fmt.Errorf("token id: %w", err)
	}
	now := t.now()
	exp := now.Add(t.ttl)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   a.UserID.Hex(),
			ID:        jti.Hex(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Version: a.TokenVersion,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	return Token{Value: s, ID: c.ID, Expires: exp}, nil
}

// Parse validates a token and returns its claims. Only HS256 is accepted,
// which also rules out `alg: none` and algorithm confusion.
func (t *Tokens) Parse(s string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, errors.New("token is expired")
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return nil, errors.New("token signature is invalid")
		default:
			return nil, errors.New("token is not valid")
		}
	}
	if c.Subject == "" || c.IssuedAt == nil {
		return nil, errors.New("token is not valid")
	}
	return &c, nil
}

// Actor resolves a token to its user through core, which refuses tokens
// of deleted users, of an older password and signed-out ones. The error
// is safe to show.
func (t *Tokens) Actor(c *core.Core, s string) (core.Actor, *Claims, error) {
	claims, err := t.Parse(s)
	if err != nil {
		return core.Anonymous(), nil, err
	}
	id, err := core.ParseID(claims.Subject)
	if err != nil {
		return core.Anonymous(), nil, errors.New("token is not valid")
	}
	a, err := c.ActorForToken(id, claims.Version, claims.ID)
	if err != nil {
		return core.Anonymous(), nil, errors.New(core.Message(err))
	}
	return a, claims, nil
}
