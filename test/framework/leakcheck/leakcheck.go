// Package leakcheck finds secrets, whole or as any 12-character slice, in text such as log
// output, events and object dumps. Tests use it to prove tokens never leak.
package leakcheck

import "strings"

// SliceLen is the shortest fragment of a secret that counts as a leak.
const SliceLen = 12

// Find returns the secrets (shortened to a safe prefix) of which text contains any
// SliceLen-character slice, or the whole secret when it is shorter.
func Find(text string, secrets []string) []string {
	slices := map[string]int{} // slice -> index of its secret
	var short []int
	for i, s := range secrets {
		if len(s) < SliceLen {
			short = append(short, i)
			continue
		}
		for j := 0; j+SliceLen <= len(s); j++ {
			slices[s[j:j+SliceLen]] = i
		}
	}
	found := map[int]bool{}
	for j := 0; j+SliceLen <= len(text); j++ {
		if i, ok := slices[text[j:j+SliceLen]]; ok {
			found[i] = true
		}
	}
	for _, i := range short {
		if s := secrets[i]; s != "" && strings.Contains(text, s) {
			found[i] = true
		}
	}
	var out []string
	for i := range found {
		s := secrets[i]
		if len(s) > 6 {
			s = s[:6] + "..."
		}
		out = append(out, s)
	}
	return out
}

// HasPEMBlock reports whether text holds the start of a PEM block ("-----BEGIN ..."), such
// as a private key: no log line, event or status has a reason to carry one.
func HasPEMBlock(text string) bool { return strings.Contains(text, "-----BEGIN ") }
