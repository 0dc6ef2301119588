// Package promtext scrapes a metrics endpoint as Prometheus does (verified HTTPS, a bearer
// token) and reads the text format the way tests compare it: one "name label=value ...
// value" line per series, sorted.
package promtext

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Lines parses text with client_golang's own parser, which refuses what Prometheus would (a
// malformed line, a family named twice), and writes each gauge, counter or untyped series as
// "name label=value ... value", labels in the order written, lines sorted.
func Lines(text string) ([]string, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("the scrape does not parse: %w", err)
	}
	var out []string
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			line := name
			for _, l := range m.GetLabel() {
				line += " " + l.GetName() + "=" + l.GetValue()
			}
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Untyped != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue // histograms and summaries: not compared as lines
			}
			out = append(out, line+" "+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Scrape GETs url as Prometheus would over HTTPS: with a bearer token (none when empty),
// trusting only the certificates in caPEM, and checking that the server's certificate names
// serverName (the URL's host when empty). It never skips verification.
func Scrape(url, token string, caPEM []byte, serverName string) (status int, body string, err error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return 0, "", errors.New("no CA certificate in the PEM")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
