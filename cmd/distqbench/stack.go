package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/client"
)

// emptyDB connects to the bench's Redis database and empties it.
func (e env) emptyDB(ctx context.Context) (*redis.Client, error) {
	rdb := redis.NewClient(&redis.Options{Addr: e.redis, DB: e.db})
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("flush bench db %d: %w", e.db, err)
	}
	return rdb, nil
}

// startSim starts the simulator with the bench's account and extra
// ALISIM_* settings, and returns its URL once it answers.
func (e env) startSim(ctx context.Context, p *procs, name string, extra ...string) (string, error) {
	addr := freePort()
	simEnv := append([]string{"ALISIM_ADDR=" + addr, "ALISIM_ACCOUNTS=" + uid + ":" + keyID + ":" + secret}, extra...)
	if err := p.start(e, name+" alisim", simEnv, filepath.Join(e.bin, "alisim")); err != nil {
		return "", err
	}
	url := "http://" + addr
	return url, waitHTTP(ctx, url+"/healthz")
}

// distqEnv is the environment of the bench's api and workers against the
// endpoint at simURL, with extra DISTQ_* settings.
func (e env) distqEnv(simURL string, extra ...string) []string {
	return append([]string{
		fmt.Sprintf("DISTQ_REDIS_URL=redis://%s/%d", e.redis, e.db),
		"DISTQ_API_TOKENS=bench:" + token,
		"DISTQ_ALIBABA_UID=" + uid,
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + keyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + secret,
		"DISTQ_ALIBABA_ENDPOINT=" + simURL,
	}, append(extra, e.extra...)...)
}

// startAPI starts an api and returns its URL once it is ready.
func (e env) startAPI(ctx context.Context, p *procs, name string, env []string) (string, error) {
	addr := freePort()
	if err := p.start(e, name+" api", append(env, "DISTQ_HTTP_ADDR="+addr), filepath.Join(e.bin, "api")); err != nil {
		return "", err
	}
	url := "http://" + addr
	return url, waitHTTP(ctx, url+"/readyz")
}

// apiClient is a client of the api at url, as the bench's team.
func apiClient(url string) *client.Client { return client.New(url, token) }

// benchBatch is a batch of n products, named by keyFormat and their index,
// from the bench's source instance to target.
func benchBatch(target, keyFormat string, n int) client.BatchRequest {
	b := client.BatchRequest{Items: make([]client.BatchItem, n), SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: target}
	for i := range b.Items {
		b.Items[i].ProductKey = fmt.Sprintf(keyFormat, i)
	}
	return b
}

// startWorker starts worker number i.
func (e env) startWorker(p *procs, name string, i int, env []string) error {
	return p.start(e, fmt.Sprintf("%s worker %d", name, i), append(env, "DISTQ_METRICS_ADDR="+freePort()), filepath.Join(e.bin, "worker"))
}
