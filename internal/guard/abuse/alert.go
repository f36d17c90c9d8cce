package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// AlertEvent is the JSON body POSTed to the webhook, one per alert.
type AlertEvent struct {
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	Action     string    `json:"action"`
	KeyID      string    `json:"key_id"`
	KeyName    string    `json:"key_name"`
	ClientIP   string    `json:"client_ip,omitempty"`
	Route      string    `json:"route,omitempty"`
	Detail     string    `json:"detail"`
	Categories []string  `json:"categories,omitempty"`
	Suppressed int       `json:"suppressed,omitempty"` // alerts of this kind for this key skipped since the last one
	Prompt     string    `json:"prompt,omitempty"`     // output watch: the (redacted) end of the preceding prompt
}

// alerter sends alerts from a bounded queue on one goroutine.
type alerter struct {
	url     string
	timeout time.Duration
	client  *http.Client
	log     *slog.Logger
	queue   chan AlertEvent
	done    chan struct{}
	stop    chan struct{}
	once    sync.Once
	ctx     context.Context // cancelled when close gives up
	cancel  context.CancelFunc
}

func newAlerter(cfg Config, client *http.Client, log *slog.Logger) *alerter {
	a := &alerter{url: cfg.Webhook, timeout: cfg.WebhookTimeout, client: client, log: log,
		done: make(chan struct{}), stop: make(chan struct{})}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if a.url == "" {
		close(a.done)
		return a
	}
	if a.client == nil {
		a.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	a.queue = make(chan AlertEvent, cfg.QueueSize)
	go a.run()
	return a
}

// submit queues an alert without blocking; a full queue drops it.
func (a *alerter) submit(ev AlertEvent) {
	if a.queue == nil {
		return
	}
	select {
	case <-a.stop:
		a.log.Warn("abuse alert dropped: detector closed", "kind", ev.Kind, "key", ev.KeyName)
		return
	default:
	}
	select {
	case a.queue <- ev:
	default:
		a.log.Warn("abuse alert dropped: webhook queue full", "kind", ev.Kind, "key", ev.KeyName)
	}
}

func (a *alerter) run() {
	defer close(a.done)
	ctx := a.ctx
	for {
		select {
		case ev := <-a.queue:
			a.send(ctx, ev)
		case <-a.stop:
			for {
				select {
				case ev := <-a.queue:
					a.send(ctx, ev)
				default:
					return
				}
			}
		}
	}
}

func (a *alerter) send(ctx context.Context, ev AlertEvent) {
	if err := a.post(ctx, ev); err != nil {
		a.log.Warn("abuse alert not delivered", "kind", ev.Kind, "key", ev.KeyName, "err", err)
	}
}

func (a *alerter) post(ctx context.Context, ev AlertEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding the alert: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", a.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llmfence-guard")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to the webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// close stops accepting alerts and waits for the queue to be sent, or for
// ctx to end.
func (a *alerter) close(ctx context.Context) error {
	a.once.Do(func() { close(a.stop) })
	select {
	case <-a.done:
		a.cancel()
		return nil
	case <-ctx.Done():
		a.cancel()
		return errors.Join(errors.New("abuse webhook: alerts still queued at close"), ctx.Err())
	}
}
