// Command dashboard-plot draws grantkeeper's Grafana dashboard (config/grafana/grantkeeper.json)
// as a PNG from a Prometheus's HTTP API, for docs/ where Grafana cannot run: each panel in its
// place on Grafana's grid, each of its queries run as Grafana would (range queries for time
// series, instant queries for stats and the table). `make dashboard-png` runs it at the end of
// the end-to-end Prometheus test (test/prometheus), against that Prometheus.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/grantkeeper/grantkeeper/test/framework/dashboard"
)

// One Grafana grid column and row, in points.
const (
	colW = 52 * vg.Length(1)
	rowH = 26 * vg.Length(1)
	pad  = 4 * vg.Length(1)
)

func main() {
	promURL := flag.String("prometheus", "http://127.0.0.1:9090", "Prometheus base URL")
	file := flag.String("dashboard", "config/grafana/grantkeeper.json", "Grafana dashboard JSON")
	startS := flag.String("start", "", "start of the plotted range (RFC 3339; default: 10 minutes before -end)")
	endS := flag.String("end", "", "end of the plotted range (RFC 3339; default: now)")
	out := flag.String("out", "docs/dashboard.png", "PNG to write")
	flag.Parse()

	end := time.Now()
	if *endS != "" {
		end = mustTime(*endS)
	}
	start := end.Add(-10 * time.Minute)
	if *startS != "" {
		start = mustTime(*startS)
	}
	d, err := dashboard.Load(*file)
	if err != nil {
		log.Fatal(err)
	}
	step := end.Sub(start) / 300
	if step < time.Second {
		step = time.Second
	}
	// Grafana's $__rate_interval: four scrape intervals at least; the range is short here.
	rateInterval := fmt.Sprintf("%ds", max(int(4*step/time.Second), 15))
	api := &promAPI{base: *promURL}

	rows := 0
	for _, p := range d.AllPanels() {
		rows = max(rows, p.GridPos.Y+p.GridPos.H)
	}
	header := 2 * rowH
	width, height := 24*colW, vg.Length(rows)*rowH+header
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110))
	whole := draw.New(img)
	whole.FillText(textStyle(16, color.Black, text.XLeft), vg.Point{X: pad * 2, Y: height - header/2 - 8},
		fmt.Sprintf("%s: %s to %s UTC (config/grafana/grantkeeper.json, plotted from Prometheus by hack/dashboard-plot)",
			d.Title, start.UTC().Format("2006-01-02 15:04:05"), end.UTC().Format("15:04:05")))

	for _, p := range d.AllPanels() {
		g := p.GridPos
		c := draw.Canvas{Canvas: img, Rectangle: vg.Rectangle{
			Min: vg.Point{X: vg.Length(g.X)*colW + pad, Y: height - header - vg.Length(g.Y+g.H)*rowH + pad},
			Max: vg.Point{X: vg.Length(g.X+g.W)*colW - pad, Y: height - header - vg.Length(g.Y)*rowH - pad},
		}}
		frame(c)
		var err error
		switch p.Type {
		case "timeseries":
			err = timeseries(c, api, p, start, end, step, rateInterval)
		case "stat":
			err = stat(c, api, p, end, rateInterval)
		case "table":
			err = table(c, api, p, end, rateInterval)
		}
		if err != nil {
			log.Fatalf("panel %q: %v", p.Title, err)
		}
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		log.Fatalf("%q: %v", s, err)
	}
	return t
}

func textStyle(size vg.Length, c color.Color, align text.XAlignment) draw.TextStyle {
	return draw.TextStyle{Color: c, Font: font.From(plot.DefaultFont, size), XAlign: align, YAlign: text.YCenter, Handler: plot.DefaultTextHandler}
}

func frame(c draw.Canvas) {
	r := c.Rectangle
	c.StrokeLines(draw.LineStyle{Color: color.Gray{Y: 200}, Width: vg.Points(1)}, []vg.Point{
		r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}, r.Min,
	})
}

func title(c draw.Canvas, s string) draw.Canvas {
	c.FillText(textStyle(11, color.Black, text.XLeft), vg.Point{X: c.Min.X + pad, Y: c.Max.Y - 9}, s)
	c.Max.Y -= 18
	return c
}

var legendRef = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

func legend(format string, metric map[string]string) string {
	if format == "" {
		var parts []string
		for k, v := range metric {
			parts = append(parts, k+"="+v)
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return legendRef.ReplaceAllStringFunc(format, func(ref string) string { return metric[legendRef.FindStringSubmatch(ref)[1]] })
}

// palette is Grafana's classic series palette: ten colours told apart at a glance.
var palette = []color.Color{
	color.RGBA{0x73, 0xbf, 0x69, 0xff}, color.RGBA{0xf2, 0xcc, 0x0c, 0xff}, color.RGBA{0x8a, 0xb8, 0xff, 0xff},
	color.RGBA{0xff, 0x78, 0x0a, 0xff}, color.RGBA{0xf2, 0x49, 0x5c, 0xff}, color.RGBA{0x57, 0x94, 0xf2, 0xff},
	color.RGBA{0xb8, 0x77, 0xd9, 0xff}, color.RGBA{0x70, 0x5d, 0xa0, 0xff}, color.RGBA{0x37, 0x87, 0x2d, 0xff},
	color.RGBA{0xfa, 0xde, 0x2a, 0xff},
}

var unitLabel = map[string]string{"s": "seconds", "reqps": "requests/s", "short": ""}

func timeseries(c draw.Canvas, api *promAPI, p dashboard.Panel, start, end time.Time, step time.Duration, rate string) error {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font.Size = 11
	pl.X.Tick.Marker = plot.TimeTicks{Format: "15:04:05"}
	pl.X.Tick.Label.Font.Size = 8
	pl.Y.Tick.Label.Font.Size = 8
	pl.Y.Label.Text = unitLabel[p.FieldConfig.Defaults.Unit]
	pl.Y.Label.TextStyle.Font.Size = 9
	pl.X.Min, pl.X.Max = float64(start.Unix()), float64(end.Unix())
	pl.Legend.Top, pl.Legend.Left = true, true
	pl.Legend.TextStyle.Font.Size = 8
	pl.Add(plotter.NewGrid())
	n := 0
	for _, t := range p.Targets {
		series, err := api.rangeQuery(dashboard.Expand(t.Expr, rate), start, end, step)
		if err != nil {
			return fmt.Errorf("%s: %w", dashboard.Flatten(t.Expr), err)
		}
		for _, s := range series {
			var xys plotter.XYs
			for _, v := range s.Values {
				y, err := strconv.ParseFloat(v[1].(string), 64)
				if err != nil || math.IsNaN(y) || math.IsInf(y, 0) {
					continue
				}
				xys = append(xys, plotter.XY{X: v[0].(float64), Y: y})
			}
			if len(xys) == 0 {
				continue
			}
			line, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			line.Color = palette[n%len(palette)]
			line.Width = vg.Points(1.5)
			pl.Add(line)
			pl.Legend.Add(legend(t.LegendFormat, s.Metric), line)
			n++
		}
	}
	if n == 0 {
		pl.Y.Min, pl.Y.Max = 0, 1
		c.FillText(textStyle(10, color.Gray{Y: 120}, text.XCenter), vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2}, "no data")
	}
	if pl.Y.Min > 0 {
		pl.Y.Min = 0
	}
	pl.Draw(draw.Crop(c, pad, -pad, pad, -pad))
	return nil
}

func stat(c draw.Canvas, api *promAPI, p dashboard.Panel, at time.Time, rate string) error {
	c = title(c, p.Title)
	value := "no data"
	for _, t := range p.Targets {
		res, err := api.instant(dashboard.Expand(t.Expr, rate), at)
		if err != nil {
			return err
		}
		if len(res) > 0 {
			value = res[0].Value[1].(string)
		}
	}
	c.FillText(textStyle(26, color.RGBA{R: 30, G: 110, B: 60, A: 255}, text.XCenter), vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2}, value)
	return nil
}

// table merges the panel's instant queries by (namespace, name), as the dashboard's merge
// transformation does: the labels of every query, and each query's value in its own column.
func table(c draw.Canvas, api *promAPI, p dashboard.Panel, at time.Time, rate string) error {
	c = title(c, p.Title)
	type row map[string]string
	rows := map[string]row{}
	valueCols := map[string]string{"A": "Ready", "C": "Token expires in", "D": "Failures", "E": "Refresh token ends in"}
	for _, t := range p.Targets {
		res, err := api.instant(dashboard.Expand(t.Expr, rate), at)
		if err != nil {
			return err
		}
		for _, s := range res {
			key := s.Metric["namespace"] + "/" + s.Metric["name"]
			r := rows[key]
			if r == nil {
				r = row{}
				rows[key] = r
			}
			for k, v := range s.Metric {
				r[k] = v
			}
			if col, ok := valueCols[t.RefID]; ok {
				v, _ := strconv.ParseFloat(s.Value[1].(string), 64)
				if strings.HasSuffix(col, " in") {
					r[col] = (time.Duration(v) * time.Second).String()
				} else {
					r[col] = strconv.FormatFloat(v, 'f', -1, 64)
				}
			}
		}
	}
	cols := []string{"namespace", "name", "Ready", "reason", "client_id", "account", "Token expires in", "Failures", "Refresh token ends in"}
	widths := []float64{1, 1, 0.6, 1.2, 3, 1.4, 1.2, 0.7, 1.4}
	total := 0.0
	for _, w := range widths {
		total += w
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	y := c.Max.Y - 8
	line := func(cells []string, bold bool) {
		x := c.Min.X + pad
		for i, cell := range cells {
			sty := textStyle(9, color.Black, text.XLeft)
			if bold {
				sty.Color = color.Gray{Y: 90}
			}
			c.FillText(sty, vg.Point{X: x, Y: y}, cell)
			x += vg.Length(widths[i]/total) * (c.Max.X - c.Min.X - 2*pad)
		}
		y -= 14
	}
	line(cols, true)
	for _, k := range keys {
		var cells []string
		for _, col := range cols {
			cells = append(cells, rows[k][col])
		}
		line(cells, false)
	}
	return nil
}

// promAPI is the part of Prometheus's HTTP API used here.
type promAPI struct{ base string }

type series struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
	Value  [2]any            `json:"value"`
}

func (a *promAPI) get(path string, q url.Values) ([]series, error) {
	resp, err := http.Get(a.base + path + "?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []series `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s", body.Error)
	}
	return body.Data.Result, nil
}

func (a *promAPI) rangeQuery(expr string, start, end time.Time, step time.Duration) ([]series, error) {
	return a.get("/api/v1/query_range", url.Values{"query": {expr}, "start": {unix(start)}, "end": {unix(end)}, "step": {strconv.Itoa(int(step / time.Second))}})
}

func (a *promAPI) instant(expr string, at time.Time) ([]series, error) {
	return a.get("/api/v1/query", url.Values{"query": {expr}, "time": {unix(at)}})
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
