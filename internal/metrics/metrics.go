// Package metrics defines distq's Prometheus metrics in one place, so the
// api and the worker export the same names with the same bounded labels
// (an account name, an action, a remote code, an outcome, a configured
// team: never an id or a product key). Metrics are built on an injected
// Registerer; tests pass a fresh registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds every distq metric.
type Metrics struct {
	Submitted       *prometheus.CounterVec   // account
	Finished        *prometheus.CounterVec   // account, outcome
	Requests        *prometheus.CounterVec   // account, action, code
	RequestDuration *prometheus.HistogramVec // action
	Throttled       *prometheus.CounterVec   // account, action
	QuotaWait       *prometheus.HistogramVec // account, kind
	SlotsInUse      *prometheus.GaugeVec     // account
	SlotsLimit      *prometheus.GaugeVec     // account
	RateLimit       *prometheus.GaugeVec     // account, action
	Duration        *prometheus.HistogramVec // account
	// distq_distributions_waiting is shared state: NewWaitingCollector
	// exports it from Redis at each scrape.
	Reconciled *prometheus.CounterVec // account, what
	// HTTPRequests and HTTPDuration are the api's requests. Their labels
	// come from closed sets: url is a route template or "unmatched",
	// method a known method or "other", code the status sent.
	HTTPRequests *prometheus.CounterVec   // code, method, url
	HTTPDuration *prometheus.HistogramVec // method, url

	// AccountErrors counts failures the remote gave for the account itself
	// (its credentials or permissions), which teams see only as a short
	// message: the full remote text is in the worker's log.
	AccountErrors *prometheus.CounterVec // account, code (alibaba.AccountLevelCodes)

	WebhookDeliveries *prometheus.CounterVec // outcome (WebhookOutcomes)
	WebhookDuration   prometheus.Histogram

	// Fair share between the teams of an account (team.go). The team label
	// is a team given to InitTeams for the account or OtherTeam, never a
	// free value: set them through AddTeamCreate and SetTeamBacklog.
	TeamBacklog *prometheus.GaugeVec   // account, team: distq_team_backlog
	TeamPaused  *prometheus.GaugeVec   // account, team: distq_team_paused
	TeamCreates *prometheus.CounterVec // account, team: distq_team_creates_total
	// The account's effective limits, which operators may change at run
	// time (SetAccountLimits).
	AccountCreateQPS *prometheus.GaugeVec // account: distq_account_create_qps
	AccountMaxJobs   *prometheus.GaugeVec // account: distq_account_max_jobs

	teamSets *teamSets
}

// WebhookOutcomes of distq_webhook_deliveries_total: one per attempt
// (delivered, http_error: a non-2xx answer, network_error, refused: the
// address policy refused the destination), and given_up once per event
// whose retries ran out.
var WebhookOutcomes = []string{"delivered", "http_error", "network_error", "refused", "given_up"}

// Outcomes of a finished distribution.
var Outcomes = []string{"succeeded", "failed", "canceled"}

// WaitKinds of distq_quota_wait_seconds.
var WaitKinds = []string{"rate", "slot"}

// New builds the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distq_distributions_submitted_total", Help: "Distributions accepted by the api.",
		}, []string{"account"}),
		Finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distq_distributions_finished_total", Help: "Distributions that reached a final state, by outcome.",
		}, []string{"account", "outcome"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distq_alibaba_requests_total", Help: "Calls to the Alibaba endpoint, by action and answer code (OK on success).",
		}, []string{"account", "action", "code"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "distq_alibaba_request_duration_seconds", Help: "Duration of calls to the Alibaba endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"action"}),
		Throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distq_alibaba_throttled_total", Help: "Throttling answers from the endpoint (never counted as failures).",
		}, []string{"account", "action"}),
		QuotaWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "distq_quota_wait_seconds", Help: "Time spent waiting for a rate token (kind=rate) or a job slot (kind=slot).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900},
		}, []string{"account", "kind"}),
		SlotsInUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "distq_job_slots_in_use", Help: "Remote jobs held by distq and not yet seen finished, plus jobs made outside distq.",
		}, []string{"account"}),
		SlotsLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "distq_job_slots_limit", Help: "The account's limit of distribution jobs.",
		}, []string{"account"}),
		RateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "distq_rate_limit_per_second", Help: "The configured rate per account and action.",
		}, []string{"account", "action"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "distq_distribution_duration_seconds", Help: "Time from acceptance to a final state.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}, []string{"account"}),
		Reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distq_reconciled_total", Help: "Repairs made by the reconciler (adopted jobs, released slots, re-enqueued tasks).",
		}, []string{"account", "what"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distq_http_requests_total", Help: "HTTP requests answered by the api, by the status sent, the method and the route template (\"unmatched\" when no route matched).",
		}, []string{"code", "method", "url"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "distq_http_request_duration_seconds", Help: "Time to answer an HTTP request of the api, long polls included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "url"}),
	}
	m.AccountErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "distq_account_errors_total", Help: "Distributions failed by an account-level remote error (credentials, signature, permissions): an operator must act. Teams see a short message; the remote's text is in the worker's log.",
	}, []string{"account", "code"})
	reg.MustRegister(m.AccountErrors)
	m.WebhookDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "distq_webhook_deliveries_total", Help: "Webhook delivery attempts by outcome, and events given up (outcome=given_up).",
	}, []string{"outcome"})
	m.WebhookDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "distq_webhook_delivery_duration_seconds", Help: "Duration of one webhook delivery attempt, connection to answer.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	for _, o := range WebhookOutcomes {
		m.WebhookDeliveries.WithLabelValues(o)
	}
	reg.MustRegister(m.WebhookDeliveries, m.WebhookDuration)
	m.newTeamMetrics()
	reg.MustRegister(m.TeamBacklog, m.TeamCreates, m.TeamPaused, m.AccountCreateQPS, m.AccountMaxJobs)
	reg.MustRegister(m.Submitted, m.Finished, m.Requests, m.RequestDuration, m.Throttled, m.QuotaWait,
		m.SlotsInUse, m.SlotsLimit, m.RateLimit, m.Duration, m.Reconciled,
		m.HTTPRequests, m.HTTPDuration)
	return m
}

// InitAccount creates the expected label sets of an account at zero, so
// dashboards and alerts see them before the first event.
func (m *Metrics) InitAccount(account string, actions []string, rates map[string]int, maxJobs int) {
	m.Submitted.WithLabelValues(account)
	for _, o := range Outcomes {
		m.Finished.WithLabelValues(account, o)
	}
	for _, a := range actions {
		m.Throttled.WithLabelValues(account, a)
		m.Requests.WithLabelValues(account, a, "OK")
		m.RequestDuration.WithLabelValues(a)
		m.RateLimit.WithLabelValues(account, a).Set(float64(rates[a]))
	}
	for _, k := range WaitKinds {
		m.QuotaWait.WithLabelValues(account, k)
	}
	for _, what := range []string{"adopted_job", "released_slot", "requeued_task"} {
		m.Reconciled.WithLabelValues(account, what)
	}
	m.SlotsInUse.WithLabelValues(account)
	m.SlotsLimit.WithLabelValues(account).Set(float64(maxJobs))
	m.Duration.WithLabelValues(account)
}
