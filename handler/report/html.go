package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"regexp"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

var (
	barColor      = color.RGBA{R: 0x2b, G: 0x5c, B: 0x8a, A: 0xff}
	resolvedColor = color.RGBA{R: 0x7a, G: 0xa6, B: 0x3d, A: 0xff}
)

// svgHead is the prologue and root element vgsvg writes; the page inlines
// the root without its XML prologue, comment and namespace declarations
// (an HTML parser puts <svg> in the SVG namespace itself), so that no URL
// of any kind appears in the page.
var svgHead = regexp.MustCompile(`(?s)\A.*?<svg (width="[^"]*" height="[^"]*" viewBox="[^"]*")[^>]*>`)

// chart draws p as an inline SVG element labelled label.
func chart(p *plot.Plot, w, h vg.Length, label string) (template.HTML, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", fmt.Errorf("drawing a chart: %w", err)
	}
	m := svgHead.FindSubmatchIndex(b.Bytes())
	if m == nil {
		return "", fmt.Errorf("drawing a chart: unexpected SVG prologue")
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, `<svg %s role="img" aria-label="%s">`, b.Bytes()[m[2]:m[3]], template.HTMLEscapeString(label))
	out.Write(b.Bytes()[m[1]:])
	return template.HTML(out.String()), nil
}

// barChart is a horizontal bar chart of cs, labelled through name.
func barChart(title string, cs []Count, name func(string) string) (template.HTML, error) {
	if len(cs) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = title
	vs := make(plotter.Values, len(cs))
	names := make([]string, len(cs))
	// Largest at the top: the bars go up the Y axis.
	for i, c := range cs {
		j := len(cs) - 1 - i
		vs[j] = float64(c.N)
		names[j] = name(c.Key)
	}
	b, err := plotter.NewBarChart(vs, vg.Points(14))
	if err != nil {
		return "", fmt.Errorf("drawing a chart: %w", err)
	}
	b.Horizontal = true
	b.Color = barColor
	b.LineStyle.Width = 0
	p.Add(b)
	p.NominalY(names...)
	p.X.Min = 0
	p.X.Tick.Marker = intTicks{}
	return chart(p, 16*vg.Centimeter, vg.Length(2.2+0.7*float64(len(cs)))*vg.Centimeter, title)
}

// weeklyChart is the received and resolved cases of each week, side by side.
func weeklyChart(title string, ws []Week, received, resolved string) (template.HTML, error) {
	if len(ws) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = title
	rv, sv := make(plotter.Values, len(ws)), make(plotter.Values, len(ws))
	names := make([]string, len(ws))
	for i, w := range ws {
		rv[i], sv[i] = float64(w.Received), float64(w.Resolved)
		names[i] = w.Start
	}
	width := vg.Points(12)
	a, err := plotter.NewBarChart(rv, width)
	if err != nil {
		return "", fmt.Errorf("drawing a chart: %w", err)
	}
	a.Color, a.LineStyle.Width, a.Offset = barColor, 0, -width/2
	b, err := plotter.NewBarChart(sv, width)
	if err != nil {
		return "", fmt.Errorf("drawing a chart: %w", err)
	}
	b.Color, b.LineStyle.Width, b.Offset = resolvedColor, 0, width/2
	p.Add(a, b)
	p.Legend.Add(received, a)
	p.Legend.Add(resolved, b)
	p.Legend.Top = true
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Tick.Marker = intTicks{}
	return chart(p, 16*vg.Centimeter, 8*vg.Centimeter, title)
}

// trendChart is a line per category of the cases received each week.
func trendChart(title string, ws []Week, cats []Count, name func(string) string) (template.HTML, error) {
	if len(ws) < 2 || len(cats) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = title
	var lines []any
	for i, c := range cats {
		pts := make(plotter.XYs, len(ws))
		for j, w := range ws {
			pts[j] = plotter.XY{X: float64(j), Y: float64(w.ByCategory[i])}
		}
		lines = append(lines, name(c.Key), pts)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return "", fmt.Errorf("drawing a chart: %w", err)
	}
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Start
	}
	p.NominalX(names...)
	p.Legend.Top = true
	p.Y.Min = 0
	p.Y.Tick.Marker = intTicks{}
	return chart(p, 16*vg.Centimeter, 8*vg.Centimeter, title)
}

// scoreChart is the survey answers by score, 1 to 5, as vertical bars;
// "" with no answer.
func scoreChart(title string, s Satisfaction) (template.HTML, error) {
	if s.Responses == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = title
	vs := make(plotter.Values, len(s.Scores))
	for i, n := range s.Scores {
		vs[i] = float64(n)
	}
	b, err := plotter.NewBarChart(vs, vg.Points(24))
	if err != nil {
		return "", fmt.Errorf("drawing a chart: %w", err)
	}
	b.Color, b.LineStyle.Width = barColor, 0
	p.Add(b)
	p.NominalX("1", "2", "3", "4", "5")
	p.Y.Min = 0
	p.Y.Tick.Marker = intTicks{}
	return chart(p, 12*vg.Centimeter, 7*vg.Centimeter, title)
}

// intTicks marks whole numbers only.
type intTicks struct{}

func (intTicks) Ticks(min, max float64) []plot.Tick {
	step := 1.0
	for (max-min)/step > 10 {
		step *= 2
	}
	var ts []plot.Tick
	for v := 0.0; v <= max; v += step {
		if v >= min {
			ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprint(int(v))})
		}
	}
	return ts
}

type htmlTime struct {
	Label, Median, P90, Within string
	N                          int
}

type htmlCounts struct {
	Title string
	Chart template.HTML
	Rows  []Count
}

// WriteHTML writes the report as one static page in lang (a key of
// Languages; English when unknown): inline SVG charts, no script, nothing
// loaded from anywhere, and a print style sheet.
func (r *Report) WriteHTML(w io.Writer, lang string) error {
	t, ok := Languages[lang]
	if !ok {
		lang, t = "en", Languages["en"]
	}
	dir := "ltr"
	if lang == "ar" {
		dir = "rtl"
	}
	name := func(k string) string {
		if s, ok := t[k]; ok {
			return s
		}
		return k
	}
	same := func(k string) string { return k }
	status := func(k string) string { return Label("statuses", k, lang) }
	reason := func(k string) string { return Label("close_reasons", k, lang) }
	title := func(k string) string {
		if ts := r.titles[k]; ts != nil {
			if s := ts[lang]; s != "" {
				return s
			}
			if s := ts[""]; s != "" {
				return s
			}
		}
		return k
	}
	var sections []htmlCounts
	for _, s := range []struct {
		key string
		cs  []Count
		nm  func(string) string
	}{
		{"by_category", r.ByCategory, title},
		{"by_severity", r.BySeverity, same},
		{"by_status", r.ByStatus, status},
		{"by_channel", r.ByChannel, name},
		{"backlog", r.Backlog, name},
		{"close_reasons", r.CloseReasons, reason},
	} {
		ch, err := barChart(t[s.key], s.cs, s.nm)
		if err != nil {
			return err
		}
		rows := make([]Count, len(s.cs))
		for i, c := range s.cs {
			rows[i] = Count{s.nm(c.Key), c.N}
		}
		sections = append(sections, htmlCounts{t[s.key], ch, rows})
	}
	weekly, err := weeklyChart(t["weekly"], r.Weekly, t["received"], t["resolved"])
	if err != nil {
		return err
	}
	trend, err := trendChart(t["trend"], r.Weekly, r.ByCategory, title)
	if err != nil {
		return err
	}
	times := []htmlTime{
		durRow(t, "acknowledge", r.Acknowledge, r.AcknowledgeTarget),
		durRow(t, "first_response", r.FirstResponse, r.FirstResponseTarget),
		durRow(t, "resolve", r.Resolve, r.ResolveTarget),
	}
	sat, err := scoreChart(t["sat_chart"], r.Satisfaction)
	if err != nil {
		return err
	}
	var scores []Count
	for i, n := range r.Satisfaction.Scores {
		scores = append(scores, Count{fmt.Sprint(i + 1), n})
	}
	var escs []Count
	for _, e := range r.Escalations {
		label := e.Label
		if label == "" {
			label = "–"
		}
		escs = append(escs, Count{fmt.Sprintf(t["esc_after"], label, human(time.Duration(e.AfterMinutes)*time.Minute), name("unless_"+e.Unless)), e.N})
	}
	desk := r.Desk
	if desk == "" {
		desk = t["all_desks"]
	}
	data := map[string]any{
		"Lang": lang, "Dir": dir, "T": t, "R": r, "Desk": desk,
		"Range":    fmt.Sprintf(t["range"], r.From, r.To),
		"Sections": sections, "Weekly": weekly, "Trend": trend, "Times": times,
		"Reopen": fmt.Sprintf(t["reopen_rate"], r.Reopened, r.Resolved, r.ReopenRate()),
		"Sat":    sat, "Scores": scores, "Mean": fmt.Sprintf("%.2f", r.Satisfaction.Mean()), "Escalations": escs,
	}
	return page.Execute(w, data)
}

func durRow(t map[string]string, step string, d Durations, tg Target) htmlTime {
	row := htmlTime{Label: t[step], N: d.N, Median: "–", P90: "–", Within: "–"}
	if d.N > 0 {
		row.Median, row.P90 = human(d.Median), human(d.P90)
	}
	if tg.Cases > 0 {
		row.Within = fmt.Sprintf(t["within_of"], tg.Percent(), tg.Met, tg.Cases)
	}
	return row
}

// human renders d as days, hours and minutes: "2d 3h", "4h 10m", "25m".
func human(d time.Duration) string {
	m := int(d / time.Minute)
	days, hours, mins := m/(24*60), m/60%24, m%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, mins)
	}
	return fmt.Sprintf("%dm", mins)
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}" dir="{{.Dir}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.T.title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 52em; padding: 0 1em; color: #111; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #eee; text-align: start; }
td.n { text-align: end; font-variant-numeric: tabular-nums; }
svg { display: block; max-width: 100%; height: auto; direction: ltr; }
.small { color: #555; font-size: 0.9em; }
section { break-inside: avoid; page-break-inside: avoid; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  @page { margin: 1.5cm; }
}
</style>
</head>
<body>
<h1>{{.T.title}}</h1>
<p>{{.T.desk}}: {{.Desk}}<br>{{.Range}}</p>
<p><strong>{{.T.total}}: {{.R.Total}}</strong>{{if .R.FactsOnly}} ({{.R.FactsOnly}} {{.T.facts_only}}){{end}}</p>
<section>
<h2>{{.T.weekly}}</h2>
{{.Weekly}}
<table><tr><th></th><th>{{.T.received}}</th><th>{{.T.resolved}}</th></tr>
{{range .R.Weekly}}<tr><td>{{.Start}}</td><td class="n">{{.Received}}</td><td class="n">{{.Resolved}}</td></tr>
{{end}}</table>
</section>
{{if .Trend}}<section>
<h2>{{.T.trend}}</h2>
{{.Trend}}
</section>
{{end}}<section>
<h2>{{.T.times}}</h2>
<table><tr><th>{{.T.step}}</th><th>{{.T.cases}}</th><th>{{.T.median}}</th><th>{{.T.p90}}</th><th>{{.T.within}}</th></tr>
{{range .Times}}<tr><td>{{.Label}}</td><td class="n">{{.N}}</td><td class="n">{{.Median}}</td><td class="n">{{.P90}}</td><td class="n">{{.Within}}</td></tr>
{{end}}</table>
</section>
{{range .Sections}}<section>
<h2>{{.Title}}</h2>
{{if .Rows}}{{.Chart}}
<table><tr><th></th><th>{{$.T.count}}</th></tr>
{{range .Rows}}<tr><td>{{.Key}}</td><td class="n">{{.N}}</td></tr>
{{end}}</table>{{else}}<p>{{$.T.none}}</p>{{end}}
</section>
{{end}}<section>
<h2>{{.T.reopen}}</h2>
<p>{{.Reopen}}</p>
</section>
<section>
<h2>{{.T.escalations}}</h2>
{{if .Escalations}}<table><tr><th>{{.T.esc_step}}</th><th>{{.T.esc_cases}}</th></tr>
{{range .Escalations}}<tr><td>{{.Key}}</td><td class="n">{{.N}}</td></tr>
{{end}}</table>{{else}}<p>{{.T.none}}</p>{{end}}
</section>
<section>
<h2>{{.T.satisfaction}}</h2>
{{if .R.Satisfaction.Responses}}<p>{{.T.responses}}: {{.R.Satisfaction.Responses}}<br>{{.T.mean}}: {{.Mean}}</p>
{{.Sat}}
<table><tr><th>{{.T.score}}</th><th>{{.T.count}}</th></tr>
{{range .Scores}}<tr><td>{{.Key}}</td><td class="n">{{.N}}</td></tr>
{{end}}</table>{{else}}<p>{{.T.none}}</p>{{end}}
</section>
<section>
<h2>{{.T.referrals}}</h2>
<table>
<tr><td>{{.T.referred}}</td><td class="n">{{.R.Referred}}</td></tr>
<tr><td>{{.T.consent}}</td><td class="n">{{.R.ReferralConsent}}</td></tr>
<tr><td>{{.T.outcome}}</td><td class="n">{{.R.ReferralOutcome}}</td></tr>
</table>
</section>
<p class="small">{{.T.generated}}</p>
</body>
</html>
`))
