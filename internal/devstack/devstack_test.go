package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// What `make run` does with a user's settings: the stack takes the teams'
// tokens, the team rate and the simulator's account, and a distribution of
// the second team succeeds on the embedded Redis.
func TestStackHonoursTheEnvironment(t *testing.T) {
	t.Parallel()
	o, _, _, err := FromEnv(lookup(map[string]string{
		"DISTQ_HTTP_ADDR": "127.0.0.1:0", "DISTQ_METRICS_ADDR": "127.0.0.1:0", "ALISIM_ADDR": "127.0.0.1:0",
		"DISTQ_API_TOKENS":    "team-a:token-aaaa-1,team-b:token-bbbb-2",
		"DISTQ_TEAM_RPS":      "50",
		"DISTQ_MAX_JOBS":      "3",
		"ALISIM_ACCOUNTS":     "4242:ak-4242:secret-4242",
		"ALISIM_JOB_DURATION": "100ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	if st.Config.TeamRPS != 50 || st.Config.DefaultAccount().MaxJobs != 3 || st.Config.DefaultAccount().UID != "4242" || st.Token != "token-aaaa-1" {
		t.Fatalf("config %+v, token %q", st.Config, st.Token)
	}

	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, st.APIURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := call("GET", "/v1/distributions", DevToken, ""); code != http.StatusUnauthorized {
		t.Errorf("the dev token with DISTQ_API_TOKENS set: %d", code)
	}
	code, d := call("POST", "/v1/distributions", "token-bbbb-2",
		`{"product_key":"a1devstack","source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja0000demo"}`)
	if code != http.StatusAccepted && code != http.StatusCreated {
		t.Fatalf("submit as team-b: %d %v", code, d)
	}
	id, _ := d["id"].(string)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, d = call("GET", "/v1/distributions/"+id+"?wait=5s&state="+d["state"].(string), "token-bbbb-2", "")
		if d["state"] == "succeeded" {
			break
		}
		if d["state"] == "failed" || time.Now().After(deadline) {
			t.Fatalf("distribution of team-b: %v", d)
		}
	}
	if code, _ := call("GET", "/v1/distributions/"+id, "token-aaaa-1", ""); code != http.StatusNotFound {
		t.Errorf("team-a sees team-b's distribution: %d", code)
	}
}
