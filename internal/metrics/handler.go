package metrics

import (
	"bufio"
	"compress/gzip"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Path is where the metrics endpoint serves, controller-runtime's fixed path.
const Path = "/metrics"

// scrapeTimeout bounds one scrape's wait for the cache.
const scrapeTimeout = 10 * time.Second

// textFormat is what Handler always serves: the text format every Prometheus reads (the
// scraper's Accept lists it) and that the per-grant series are written in. The Content-Type
// says which format it is, so a scraper that prefers OpenMetrics or protobuf still parses it.
var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// Handler serves the metrics endpoint in place of client_golang's promhttp handler for
// Path (other paths go to next): the registry's families, encoded by client_golang, then
// every grant's series from the cache, written as they are read. Errors before the first
// byte answer 500, as promhttp's HTTPErrorOnError (controller-runtime's setting) does. The
// scrape's authentication wraps this handler (cmd/manager's metrics filter).
func Handler(next http.Handler, reg prometheus.Gatherer, grants *GrantSeries) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
		defer cancel()
		// Gathered first, so the Go runtime's memory figures are read before this scrape's
		// own list of grants is allocated.
		families, err := reg.Gather()
		if err != nil {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		list, err := grants.list(ctx)
		if err != nil {
			http.Error(w, "An error has occurred while serving metrics: listing grants: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(textFormat))
		out := bufio.NewWriterSize(w, 32<<10)
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			// A scrape at 10,000 grants is about 8 MB of text; gzip makes it a tenth.
			w.Header().Set("Content-Encoding", "gzip")
			zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // the level is valid
			defer zw.Close()
			out = bufio.NewWriterSize(zw, 32<<10)
		}
		defer out.Flush()
		enc := expfmt.NewEncoder(out, textFormat)
		for _, mf := range families {
			if err := enc.Encode(mf); err != nil {
				return // the scraper went away
			}
		}
		_ = writeGrants(out, list) // an error here is the scraper gone; the status is sent
	})
}

// acceptsGzip reads an Accept-Encoding header: gzip listed without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
