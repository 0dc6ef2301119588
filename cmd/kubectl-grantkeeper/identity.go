package main

import "slices"

// withIdentityScopes adds openid and email to the scopes a consent asks for: the token
// endpoint then names the account (status.account), and Google sends Cross-Account
// Protection events only for users who granted email or profile access.
func withIdentityScopes(scopes []string) []string {
	out := slices.Clone(scopes)
	for _, s := range []string{"openid", "email"} {
		if !slices.Contains(out, s) && !(s == "email" && slices.Contains(out, "https://www.googleapis.com/auth/userinfo.email")) {
			out = append(out, s)
		}
	}
	return out
}
