package main

import (
	"fmt"
	"html"
	"os"
	"strings"
)

// Bar is one row of a horizontal bar chart: a value, an optional range around it
// (low..high, drawn as a whisker) and an optional stacked split of the value.
type Bar struct {
	Label     string
	Value     float64
	Low, High float64   // whisker; both 0 means none
	Parts     []float64 // stacked segments summing to Value; nil means one segment
	Text      string    // the label printed after the bar
}

// Chart is a horizontal bar chart written as a self-contained SVG file.
type Chart struct {
	Title     string
	Unit      string   // axis unit, e.g. "ms"
	Target    float64  // a dashed vertical line; 0 means none
	TargetTxt string   // its label
	PartNames []string // legend of the stacked segments
	Bars      []Bar
}

var palette = []string{"#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#9D755D"}

// SVG renders the chart. The scale starts at 0 and ends at the largest value,
// whisker or target, plus a margin.
func (c Chart) SVG() string {
	const left, right, top, rowH, barH, width = 170, 150, 46, 30, 18, 760
	hi := c.Target
	for _, b := range c.Bars {
		hi = max(hi, b.Value, b.High)
	}
	if hi <= 0 {
		hi = 1
	}
	hi *= 1.05
	plotW := float64(width - left - right)
	x := func(v float64) float64 { return left + v/hi*plotW }
	legendH := 0
	if len(c.PartNames) > 0 {
		legendH = 22
	}
	height := top + len(c.Bars)*rowH + 34 + legendH
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&s, `<text x="%d" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", 10, html.EscapeString(c.Title))
	axisY := top + len(c.Bars)*rowH
	for i := 0; i <= 4; i++ {
		v := hi / 1.05 * float64(i) / 4
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(v), top-6, x(v), axisY)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s %s</text>`+"\n", x(v), axisY+16, trimFloat(v), c.Unit)
	}
	for i, b := range c.Bars {
		y := top + i*rowH
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH-4, html.EscapeString(b.Label))
		parts := b.Parts
		if parts == nil {
			parts = []float64{b.Value}
		}
		at := 0.0
		for j, p := range parts {
			color := palette[0]
			switch {
			case len(b.Parts) > 0:
				color = palette[j%len(palette)]
			case len(c.PartNames) > 0:
				color = "#999" // an unsplit bar beside split ones: not one of the legend's parts
			}
			fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x(at), y, x(at+p)-x(at), barH, color)
			at += p
		}
		if b.High > 0 {
			mid := y + barH/2
			fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222"/>`+"\n", x(b.Low), mid, x(b.High), mid)
			fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222"/>`+"\n", x(b.High), mid-5, x(b.High), mid+5)
		}
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" fill="#222">%s</text>`+"\n", max(x(b.Value), x(b.High))+6, y+barH-4, html.EscapeString(b.Text))
	}
	if c.Target > 0 {
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c00" stroke-dasharray="5,4"/>`+"\n", x(c.Target), top-10, x(c.Target), axisY)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" fill="#c00" text-anchor="middle">%s</text>`+"\n", x(c.Target), top-13, html.EscapeString(c.TargetTxt))
	}
	lx := 10.0
	for j, n := range c.PartNames {
		ly := axisY + 36
		fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="10" height="10" fill="%s"/>`+"\n", lx, ly-9, palette[j%len(palette)])
		fmt.Fprintf(&s, `<text x="%.1f" y="%d">%s</text>`+"\n", lx+14, ly, html.EscapeString(n))
		lx += 24 + 7*float64(len(n))
	}
	s.WriteString("</svg>\n")
	return s.String()
}

// Write writes the SVG to path.
func (c Chart) Write(path string) error {
	if err := os.WriteFile(path, []byte(c.SVG()), 0o644); err != nil {
		return fmt.Errorf("write chart %q: %w", path, err)
	}
	return nil
}

func trimFloat(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	case v < 10:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	}
	return fmt.Sprintf("%.0f", v)
}
