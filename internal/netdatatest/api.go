package netdatatest

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// Host queries one host's API on an agent: the agent's own host (embedded in
// Netdata) or, on a parent, a child's (Netdata.HostView, Netdata.WaitHost).
type Host struct {
	n    *Netdata
	base string // URL prefix that /api/v1/... is appended to
	guid string // machine GUID of the host; "" for the agent's own host
}

// HostAt reads the API of an agent this package did not start (such as a
// Netdata 2.x a test runs itself) at url.
func HostAt(url string) *Host { return &Host{base: url} }

// HostURL is the prefix of this host's API: the agent's URL, or
// URL/host/GUID for a child seen on a parent.
func (h *Host) HostURL() string { return h.base }

// Chart is an entry of /api/v1/charts.
type Chart struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Family      string            `json:"family"`
	Context     string            `json:"context"`
	Title       string            `json:"title"`
	Priority    int64             `json:"priority"`
	Plugin      string            `json:"plugin"`
	Module      string            `json:"module"`
	Units       string            `json:"units"`
	ChartType   string            `json:"chart_type"`
	UpdateEvery int               `json:"update_every"`
	FirstEntry  int64             `json:"first_entry"`
	LastEntry   int64             `json:"last_entry"`
	Labels      map[string]string `json:"chart_labels"`
	Dimensions  map[string]struct {
		Name string `json:"name"`
	} `json:"dimensions"`
}

// Charts returns /api/v1/charts keyed by chart id.
func (h *Host) Charts() (map[string]Chart, error) {
	var r struct {
		Hostname string           `json:"hostname"`
		Charts   map[string]Chart `json:"charts"`
	}
	if err := h.get("/api/v1/charts", nil, &r); err != nil {
		return nil, err
	}
	return r.Charts, nil
}

// Data is /api/v1/data in format=json: Labels[0] is "time", Rows are newest
// first, Rows[i][0] the unix time and null values NaN.
type Data struct {
	Labels []string
	Rows   [][]float64
}

// Column returns the values of one label (e.g. a dimension name), newest
// first, or nil when the label is unknown.
func (d *Data) Column(label string) []float64 {
	for j, l := range d.Labels {
		if l == label {
			out := make([]float64, len(d.Rows))
			for i, r := range d.Rows {
				out[i] = math.NaN()
				if j < len(r) {
					out[i] = r[j]
				}
			}
			return out
		}
	}
	return nil
}

// Latest returns the newest non-NaN value of label.
func (d *Data) Latest(label string) (float64, bool) {
	for _, v := range d.Column(label) {
		if !math.IsNaN(v) {
			return v, true
		}
	}
	return 0, false
}

// Data returns /api/v1/data?chart=CHART&after=-AFTERSEC&format=json.
func (h *Host) Data(chart string, afterSec int) (*Data, error) {
	q := url.Values{"chart": {chart}, "after": {fmt.Sprint(-afterSec)}, "format": {"json"}}
	return h.data(q)
}

// data reads /api/v1/data with q; nulls become NaN.
func (h *Host) data(q url.Values) (*Data, error) {
	var r struct {
		Labels []string     `json:"labels"`
		Data   [][]*float64 `json:"data"`
	}
	if err := h.get("/api/v1/data", q, &r); err != nil {
		return nil, err
	}
	d := &Data{Labels: r.Labels, Rows: make([][]float64, len(r.Data))}
	for i, row := range r.Data {
		d.Rows[i] = make([]float64, len(row))
		for j, v := range row {
			d.Rows[i][j] = math.NaN()
			if v != nil {
				d.Rows[i][j] = *v
			}
		}
	}
	return d, nil
}

// DataRange returns /api/v1/data?chart=CHART&after=AFTER&before=BEFORE
// (unix seconds) in format=json, one row per second of update every 1.
func (h *Host) DataRange(chart string, after, before int64) (*Data, error) {
	q := url.Values{"chart": {chart}, "after": {fmt.Sprint(after)}, "before": {fmt.Sprint(before)}, "format": {"json"}}
	return h.data(q)
}

// WaitChart waits until the chart exists and its last 10 s have two non-null
// values, and returns that data; it fails the test after timeout. (Right
// after a chart's first collection 1.37 briefly shows 0 in the newest slot,
// which turns into a gap; the real values start with the second collection.)
func (h *Host) WaitChart(t testing.TB, id string, timeout time.Duration) *Data {
	t.Helper()
	var last error
	deadline := time.Now().Add(timeout)
	for {
		charts, err := h.Charts()
		if err == nil {
			if _, ok := charts[id]; ok {
				d, err := h.Data(id, 10)
				if err == nil && hasValue(d) {
					return d
				}
				last = fmt.Errorf("chart %s has no data yet (err %v)", id, err)
			} else {
				last = fmt.Errorf("chart %s not in %d charts", id, len(charts))
			}
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e: %s: waiting %v for chart %s: %v", h.base, timeout, id, last)
		}
		time.Sleep(PollInterval)
	}
}

func hasValue(d *Data) bool {
	rows := 0
	for _, r := range d.Rows {
		for _, v := range r[1:] {
			if !math.IsNaN(v) {
				rows++
				break
			}
		}
	}
	return rows >= 2
}

// Alarm is an entry of /api/v1/alarms?all. Warn, Crit and Calc are
// HTML-unescaped (the API escapes them).
type Alarm struct {
	ID               int64    `json:"id"`
	Name             string   `json:"name"`
	Chart            string   `json:"chart"`
	Family           string   `json:"family"`
	Class            string   `json:"class"`
	Component        string   `json:"component"`
	Type             string   `json:"type"`
	Active           bool     `json:"active"`
	Disabled         bool     `json:"disabled"`
	Silenced         bool     `json:"silenced"`
	Exec             string   `json:"exec"`
	Recipient        string   `json:"recipient"`
	Source           string   `json:"source"`
	Units            string   `json:"units"`
	Info             string   `json:"info"`
	Summary          string   `json:"summary"` // 2.x
	Status           string   `json:"status"`
	LastStatusChange int64    `json:"last_status_change"`
	LastUpdated      int64    `json:"last_updated"`
	NextUpdate       int64    `json:"next_update"`
	UpdateEvery      int      `json:"update_every"`
	ValueString      string   `json:"value_string"`
	LookupDimensions string   `json:"lookup_dimensions"`
	LookupMethod     string   `json:"lookup_method"`
	LookupAfter      int64    `json:"lookup_after"`
	LookupBefore     int64    `json:"lookup_before"`
	LookupOptions    string   `json:"lookup_options"`
	Calc             string   `json:"calc"`
	Warn             string   `json:"warn"`
	Crit             string   `json:"crit"`
	Value            *float64 `json:"value"`
}

// Alarms returns /api/v1/alarms?all keyed by "CHART.NAME", and the latest
// alarm log unique_id (a cursor for AlarmLog and WaitAlarmStatus meaning
// "from now on").
func (h *Host) Alarms() (map[string]Alarm, int64, error) {
	var r struct {
		Latest int64            `json:"latest_alarm_log_unique_id"`
		Alarms map[string]Alarm `json:"alarms"`
	}
	if err := h.get("/api/v1/alarms?all", nil, &r); err != nil {
		return nil, 0, err
	}
	for k, a := range r.Alarms {
		a.Warn, a.Crit, a.Calc = html.UnescapeString(a.Warn), html.UnescapeString(a.Crit), html.UnescapeString(a.Calc)
		r.Alarms[k] = a
	}
	return r.Alarms, r.Latest, nil
}

// AlertSourceFile is the file of an alert's source: 1.37 writes
// LINE@FILE, 2.x line=LINE,file=FILE.
func AlertSourceFile(source string) string {
	if _, f, ok := strings.Cut(source, ",file="); ok {
		return f
	}
	if _, f, ok := strings.Cut(source, "@"); ok {
		return f
	}
	return source
}

// AlarmLogEntry is an entry of /api/v1/alarm_log: one status transition.
type AlarmLogEntry struct {
	Hostname         string   `json:"hostname"`
	UniqueID         int64    `json:"unique_id"`
	AlarmID          int64    `json:"alarm_id"`
	AlarmEventID     int64    `json:"alarm_event_id"`
	Name             string   `json:"name"`
	Chart            string   `json:"chart"`
	Context          string   `json:"context"`
	Family           string   `json:"family"`
	Class            string   `json:"class"`
	Component        string   `json:"component"`
	Type             string   `json:"type"`
	Processed        bool     `json:"processed"`
	Updated          bool     `json:"updated"`
	ExecRun          int64    `json:"exec_run"`
	ExecFailed       bool     `json:"exec_failed"`
	Exec             string   `json:"exec"`
	Recipient        string   `json:"recipient"`
	ExecCode         int      `json:"exec_code"`
	Source           string   `json:"source"`
	Units            string   `json:"units"`
	When             int64    `json:"when"`
	Duration         int64    `json:"duration"`
	NonClearDuration int64    `json:"non_clear_duration"`
	Status           string   `json:"status"`
	OldStatus        string   `json:"old_status"`
	Delay            int64    `json:"delay"`
	UpdatedByID      int64    `json:"updated_by_id"`
	UpdatesID        int64    `json:"updates_id"`
	ValueString      string   `json:"value_string"`
	OldValueString   string   `json:"old_value_string"`
	Info             string   `json:"info"`
	Value            *float64 `json:"value"`
	OldValue         *float64 `json:"old_value"`
}

// AlarmLog returns /api/v1/alarm_log?after=AFTER: the transitions whose
// unique_id is greater than after (0 for all), oldest first.
//
// On 2.x it returns the transitions Netdata notified (see notifiedLog): the
// 2.11 build here answers /api/v1/alarm_log with an empty body and logs
// "Failed to prepare statement SQL_SELECT_HEALTH_LOG". So on 2.x a
// transition appears once notified: a first UNINITIALIZED->CLEAR never (use
// the current status, /api/v1/alarms), a CLEAR after its delay.
func (h *Host) AlarmLog(after int64) ([]AlarmLogEntry, error) {
	if h.n.Major >= 2 {
		return h.notifiedLog(after), nil
	}
	var r []AlarmLogEntry
	if err := h.get("/api/v1/alarm_log", url.Values{"after": {fmt.Sprint(after)}}, &r); err != nil {
		return nil, err
	}
	sort.Slice(r, func(i, j int) bool { return r[i].UniqueID < r[j].UniqueID })
	return r, nil
}

// notifiedLog is AlarmLog made of this host's notifications: the alarm
// script gets the same unique_id, ids, time, statuses and values.
func (h *Host) notifiedLog(after int64) []AlarmLogEntry {
	var out []AlarmLogEntry
	for _, x := range h.Notifications() {
		if x.UniqueID <= after {
			continue
		}
		e := AlarmLogEntry{
			Hostname: x.Host, UniqueID: x.UniqueID, AlarmID: x.AlarmID, AlarmEventID: x.EventID,
			Name: x.Name, Chart: x.Chart, Context: x.Context, Class: x.Classification, Source: x.Source,
			Units: x.Units, When: x.When, Duration: x.Duration, NonClearDuration: x.NonClearDuration,
			Status: x.Status, OldStatus: x.OldStatus, ValueString: x.ValueString, OldValueString: x.OldValueString,
			Info: x.Info, Recipient: x.Roles, Processed: true,
		}
		if v := x.Value; !math.IsNaN(v) {
			e.Value = &v
		}
		if v := x.OldValue; !math.IsNaN(v) {
			e.OldValue = &v
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UniqueID < out[j].UniqueID })
	return out
}

// WaitAlarmStatus waits until the alarm log has an entry with unique_id >
// after in which alert name (its name, not CHART.NAME) entered status, and
// returns the oldest such entry; pass its UniqueID as after to wait for the
// next transition. It fails the test after timeout.
func (h *Host) WaitAlarmStatus(t testing.TB, name, status string, after int64, timeout time.Duration) AlarmLogEntry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	var last error
	for {
		log, err := h.AlarmLog(after)
		if err == nil {
			seen = seen[:0]
			for _, e := range log {
				if e.Name == name && e.Status == status {
					return e
				}
				seen = append(seen, fmt.Sprintf("%d %s %s->%s (%s)", e.UniqueID, e.Name, e.OldStatus, e.Status, e.ValueString))
			}
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("e2e: %s: waiting %v for alert %s to become %s after id %d: saw %q (last error %v)",
				h.base, timeout, name, status, after, seen, last)
		}
		time.Sleep(PollInterval)
	}
}

// Notifications returns the notifications the agent sent for this host,
// oldest first (see Netdata.AllNotifications for every host).
func (h *Host) Notifications() []Notification {
	var out []Notification
	guid := h.guid
	if guid == "" && h.n.Major >= 2 {
		guid = h.n.guid // 2.x passes the agent's own GUID too
	}
	for _, x := range h.n.AllNotifications() {
		if x.MachineGUID == guid {
			out = append(out, x)
		}
	}
	return out
}

// HostView addresses a host that streams to this agent, by machine GUID or
// hostname, without waiting for it. A hostname is resolved to the GUID of
// the reachable host of that name when there is one, because the parent's
// /host/HOSTNAME/ picks the first host of that name it ever saw.
func (n *Netdata) HostView(guidOrHostname string) *Host {
	id := guidOrHostname
	if hosts, err := n.MirroredHosts(); err == nil {
		for _, h := range hosts {
			if h.Hostname == guidOrHostname && h.Reachable && h.Hops > 0 {
				id = h.GUID
				break
			}
		}
	}
	return &Host{n: n, base: n.URL() + "/host/" + url.PathEscape(id), guid: id}
}

// MirroredHost is an entry of mirrored_hosts_status in /api/v1/info.
type MirroredHost struct {
	GUID      string `json:"guid"`
	Hostname  string `json:"hostname"`
	Reachable bool   `json:"reachable"`
	Hops      int    `json:"hops"`
}

// MirroredHosts returns the hosts this agent knows: itself (hops 0) and the
// children that stream to it.
func (n *Netdata) MirroredHosts() ([]MirroredHost, error) {
	var r struct {
		Hosts []MirroredHost `json:"mirrored_hosts_status"`
	}
	err := n.getJSON("/api/v1/info", &r)
	return r.Hosts, err
}

// WaitHost waits until child is connected to this parent (reachable in
// mirrored_hosts_status) and returns the view of the child's host here.
func (n *Netdata) WaitHost(t testing.TB, child *Netdata, timeout time.Duration) *Host {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		hosts, err := n.MirroredHosts()
		for _, h := range hosts {
			if h.GUID == child.MachineGUID() && h.Reachable {
				return n.HostView(h.GUID)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e: child %s (%s) did not connect to %s within %v: hosts %+v (err %v)",
				child.Hostname(), child.MachineGUID(), n.Hostname(), timeout, hosts, err)
		}
		time.Sleep(PollInterval)
	}
}

func (h *Host) get(path string, q url.Values, v any) error {
	u := h.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return GetJSON(u, v)
}

func (n *Netdata) getJSON(path string, v any) error { return GetJSON(n.URL()+path, v) }

// GetJSON decodes the JSON answer of a GET of u into v.
func GetJSON(u string, v any) error {
	resp, err := httpClient.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %v: %.200s", u, err, body)
	}
	return nil
}
