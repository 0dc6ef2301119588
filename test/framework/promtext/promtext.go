// Package promtext reads a scrape in Prometheus's text format the way tests compare it: one
// "name label=value ... value" line per series, sorted.
package promtext

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

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
