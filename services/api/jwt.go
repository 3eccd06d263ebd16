package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/piot-appliance/piot/services/core"
)

// tokenIssuer mints and checks the API's bearer tokens: HS256 only, with
// sub (user id), iat and exp always present.
// claims are the registered claims plus the user's token version.
type claims struct {
	jwt.RegisteredClaims
	Version int64 `json:"ver"`
}

type tokenIssuer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

const issuer = "piot"

func (t tokenIssuer) issue(a core.Actor) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   a.UserID.Hex(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Version: a.TokenVersion,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// parse validates a token and returns its claims. Only HS256 is accepted,
// which also rules out `alg: none` and algorithm confusion.
func (t tokenIssuer) parse(s string) (*claims, error) {
	var c claims
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
