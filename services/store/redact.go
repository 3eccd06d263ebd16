package store

import "net/url"

// redactURI hides the password of a connection string in messages.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "the configured store"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return u.String()
}
