package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/piot-appliance/piot/services/core"
)

// tokenIssuer mints and checks the API's bearer tokens: HS256 only, with
// sub (user id), iat and exp always present.
type tokenIssuer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

const issuer = "piot"

func (t tokenIssuer) issue(a core.Actor) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl)
	claims := jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   a.UserID.Hex(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// parse validates a token and returns its claims. Only HS256 is accepted,
// which also rules out `alg: none` and algorithm confusion.
func (t tokenIssuer) parse(s string) (*jwt.RegisteredClaims, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(s, &claims, func(*jwt.Token) (any, error) { return t.key, nil },
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
	if claims.Subject == "" || claims.IssuedAt == nil {
		return nil, errors.New("token is not valid")
	}
	return &claims, nil
}

// bearer extracts the token from the Authorization header, the only place
// a token is accepted (URLs end up in logs and browser history).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
