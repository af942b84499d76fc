package e2e

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/webhook"
)

// A device distribution with a notify_url: when it ends, a signed
// device_distribution.finished event (its id, state, counts and jobs)
// reaches the receiver through the outbox, retried after a 503 with the
// same webhook-id, and its delivery state shows on the distribution. A
// notify_url the server does not allow is refused.
func TestDeviceDistributionFinishedWebhook(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	rcv.start()
	names := deviceNames("hooked", 12000)
	missing := []string{names[5], names[11000]}
	opts := deviceStackOptions(alisim.Config{MissingDevices: missing})
	opts.Env = hookEnv(rcv.addr)
	opts.Worker.Webhooks = fastHooks()
	st := startStack(t, opts)
	c := newAPI(t, st.APIURL, st.Token)

	bad := deviceReq("a1hookdev", names[:2])
	bad.NotifyURL = "http://169.254.169.254/latest"
	var apiErr *client.Error
	if _, _, err := c.SubmitDevices(t.Context(), bad, ""); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || len(apiErr.FieldErrors()) != 1 || apiErr.FieldErrors()[0].Field != "notify_url" {
		t.Fatalf("a metadata notify_url: %v, want 422 on notify_url", err)
	}

	r := deviceReq("a1hookdev", names)
	r.NotifyURL = rcv.url()
	d, _, err := c.SubmitDevices(t.Context(), r, "")
	if err != nil || d.NotifyURL != rcv.url() || len(d.Jobs) != 2 {
		t.Fatalf("submit: %+v, %v", d, err)
	}
	final := c.waitDevices(d.ID, 60*time.Second)
	got := rcv.waitFor(30*time.Second, "want two deliveries", func(d []delivery) bool { return len(d) >= 2 })
	if got[0].ID == "" || got[0].ID != got[1].ID || got[0].Status != 503 || got[1].Status != 200 {
		t.Fatalf("deliveries %+v: want the same webhook-id answered 503 then 200", got)
	}
	body := got[1].Body
	data, _ := body["data"].(map[string]any)
	counts, _ := data["counts"].(map[string]any)
	jobs, _ := data["jobs"].([]any)
	if body["type"] != webhook.TypeDeviceDistributionFinished || body["timestamp"] == nil || data["id"] != d.ID ||
		data["state"] != client.DevicesSucceeded || data["devices"] != float64(12000) ||
		counts["distributed"] != float64(12000-len(missing)) || counts["failed"] != float64(len(missing)) || len(jobs) != 2 {
		t.Fatalf("event body %+v: want device_distribution.finished of %s, succeeded, %d failed, 2 jobs", body, d.ID, len(missing))
	}
	for i, j := range jobs {
		job, _ := j.(map[string]any)
		if job["job_id"] != final.Jobs[i].JobID || job["state"] != "succeeded" {
			t.Errorf("event job %d = %+v, want %+v", i, job, final.Jobs[i])
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := c.GetDevices(t.Context(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := v.Notification; n != nil && n.State == webhook.StateDelivered {
			if n.EventID != got[0].ID || n.Type != webhook.TypeDeviceDistributionFinished || n.Attempts != 2 || n.LastStatus != 200 || n.DeliveredAt == nil {
				t.Fatalf("notification %+v: want delivered in 2 attempts", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification not delivered on the view: %+v", v.Notification)
		}
		time.Sleep(50 * time.Millisecond) // the delivery state is written by the worker: poll with a deadline
	}
	if n := len(rcv.deliveries()); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
}
