package webhookcert

import (
	"testing"
	"time"
)

// TestCheck: what Check asks to issue again, for each state the Secret can be in.
func TestCheck(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names := []string{"svc.ns.svc", "svc.ns.svc.cluster.local"}
	fresh, err := Issue(Pair{}, true, "ca", names, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Issue(Pair{}, true, "ca", names, now)
	if err != nil {
		t.Fatal(err)
	}
	with := func(p Pair, k string, v []byte) Pair {
		out := Pair{}
		for k, v := range p {
			out[k] = v
		}
		out[k] = v
		return out
	}
	for _, c := range []struct {
		name             string
		p                Pair
		at               time.Time
		names            []string
		wantCA, wantCert bool
	}{
		{"empty (shipped so)", Pair{}, now, names, true, true},
		{"fresh", fresh, now, names, false, false},
		{"the certificate nears its end: only it", fresh, now.Add(CertLifetime - RenewBefore + time.Hour), names, false, true},
		{"the CA nears its end: both", fresh, now.Add(CALifetime - RenewBefore + time.Hour), names, true, true},
		{"a certificate of another CA", with(fresh, CertName, other[CertName]), now, names, false, true},
		{"the key does not match the certificate", with(fresh, KeyName, other[KeyName]), now, names, false, true},
		{"the CA key does not match the CA", with(fresh, CAKeyName, other[CAKeyName]), now, names, true, true},
		{"another service name", fresh, now, []string{"other.ns.svc"}, false, true},
		{"garbage CA", with(fresh, CAName, []byte("x")), now, names, true, true},
	} {
		ca, cert := Check(c.p, c.names, c.at)
		if ca != c.wantCA || cert != c.wantCert {
			t.Errorf("%s: Check = CA %v, certificate %v; want %v, %v", c.name, ca, cert, c.wantCA, c.wantCert)
		}
	}
	renewed, err := Issue(fresh, false, "ca", names, now.Add(CertLifetime-RenewBefore+time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if string(renewed[CAName]) != string(fresh[CAName]) || string(renewed[CertName]) == string(fresh[CertName]) {
		t.Error("renewing the certificate alone changed the CA or kept the certificate")
	}
	if ca, cert := Check(renewed, names, now.Add(CertLifetime-RenewBefore+time.Hour)); ca || cert {
		t.Errorf("the renewed pair still needs issuing: CA %v, certificate %v", ca, cert)
	}
}
