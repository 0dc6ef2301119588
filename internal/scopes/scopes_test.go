package scopes

import (
	"slices"
	"testing"
)

const (
	gmail   = "https://www.googleapis.com/auth/gmail.readonly"
	drive   = "https://www.googleapis.com/auth/drive.file"
	emailL  = "https://www.googleapis.com/auth/userinfo.email"
	profile = "https://www.googleapis.com/auth/userinfo.profile"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"email": emailL, "profile": profile, emailL: emailL, " openid ": "openid", gmail: gmail,
		// Only Google's documented short names are rewritten.
		"gmail.readonly": "gmail.readonly", "Email": "Email",
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExcess(t *testing.T) {
	for _, tc := range []struct {
		name         string
		allowed, got []string
		want         []string
	}{
		{"exactly the spec", []string{drive}, []string{drive}, nil},
		{"identity scopes are excepted, in either form", []string{drive}, []string{drive, "openid", emailL}, nil},
		{"short email excepted too", []string{drive}, []string{"email", "openid", drive}, nil},
		{"another tenant's scope", []string{drive}, []string{drive, gmail, "openid", emailL}, []string{gmail}},
		{"profile is not an identity scope", []string{drive}, []string{drive, profile}, []string{profile}},
		{"profile allowed by its short name", []string{drive, "profile"}, []string{drive, profile}, nil},
		{"fewer than the spec is not excess", []string{drive, gmail}, []string{drive}, nil},
		{"duplicates named once", []string{drive}, []string{gmail, gmail, drive}, []string{gmail}},
		{"empty answer", []string{drive}, nil, nil},
	} {
		if got := Excess(tc.allowed, tc.got); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Excess(%v, %v) = %v, want %v", tc.name, tc.allowed, tc.got, got, tc.want)
		}
	}
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		want, got, missing []string
	}{
		{[]string{drive, gmail}, []string{drive}, []string{gmail}},
		{[]string{"email", drive}, []string{emailL, drive}, nil},
		{[]string{"profile"}, []string{"email"}, []string{"profile"}},
		{[]string{drive}, []string{drive, gmail}, nil},
	} {
		if got := Missing(tc.want, tc.got); !slices.Equal(got, tc.missing) {
			t.Errorf("Missing(%v, %v) = %v, want %v", tc.want, tc.got, got, tc.missing)
		}
	}
}

func TestRefreshRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec []string
		last []string
		want [][]string
	}{
		{"no spec.scopes: no scope sent", nil, nil, nil},
		{"identity added, then without", []string{drive}, nil, [][]string{{drive, "openid", "email"}, {drive}}},
		{"identity already in the spec (long email form)", []string{drive, "openid", emailL}, nil, [][]string{{drive, "openid", emailL}}},
		{"only openid in the spec", []string{"openid", drive}, nil, [][]string{{"openid", drive, "email"}, {"openid", drive}}},
		{"last answer had identity: both tries", []string{drive}, []string{drive, "openid", emailL}, [][]string{{drive, "openid", "email"}, {drive}}},
		{"last answer for these inputs lacked openid: spec alone", []string{drive}, []string{drive}, [][]string{{drive}}},
		{"identity in the spec: asked whatever the last answer", []string{drive, "openid", "email"}, []string{drive}, [][]string{{drive, "openid", "email"}}},
	} {
		if got := RefreshRequests(tc.spec, tc.last); !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s: RefreshRequests(%v) = %v, want %v", tc.name, tc.spec, got, tc.want)
		}
	}
}
