package app

import (
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/config"
)

// internal/config knows the remote actions and the endpoint rule without
// importing internal/alibaba; both must say the same.
func TestConfigAgreesWithTheAlibabaClient(t *testing.T) {
	t.Parallel()
	if config.DefaultEndpoint != alibaba.DefaultEndpoint {
		t.Errorf("default endpoint: config %q, alibaba %q", config.DefaultEndpoint, alibaba.DefaultEndpoint)
	}
	a := config.Account{CreateQPS: 11, QueryQPS: 12, ListQPS: 13, DeleteQPS: 14}
	for action, want := range map[string]int{alibaba.ActionCreate: 11, alibaba.ActionQuery: 12, alibaba.ActionList: 13, alibaba.ActionDelete: 14} {
		if got := a.QPS(action); got != want {
			t.Errorf("QPS(%s) = %d, want %d", action, got, want)
		}
	}
	if len(alibaba.Actions) != 4 {
		t.Errorf("alibaba calls %d actions, config knows the rates of 4", len(alibaba.Actions))
	}
	for _, endpoint := range []string{
		"https://iot.cn-shanghai.aliyuncs.com", "http://127.0.0.1:8081", "http://alisim:8081/",
		"https://iot.cn-beijing.aliyuncs.com", "https://x.aliyun.com", "ftp://host", "http://", "http://h/path", "http://h?q=1", "://",
	} {
		_, aerr := alibaba.ValidateEndpoint(endpoint)
		_, cerr := config.ForWorker(func(k string) string {
			return map[string]string{"DISTQ_ALIBABA_UID": "1", "DISTQ_ALIBABA_ENDPOINT": endpoint}[k]
		})
		if (aerr == nil) != (cerr == nil) {
			t.Errorf("endpoint %q: alibaba says %v, config says %v", endpoint, aerr, cerr)
		}
	}
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	o, err := redisOptions(&config.Config{RedisURL: "redis://:pw@10.0.0.1:6380/3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Addrs) != 1 || o.Addrs[0] != "10.0.0.1:6380" || o.DB != 3 || o.Password != "pw" || o.MasterName != "" ||
		o.DialTimeout != 2*time.Second || o.ReadTimeout != 3*time.Second || o.WriteTimeout != 3*time.Second {
		t.Errorf("one server: %+v", o)
	}
	o, err = redisOptions(&config.Config{RedisURL: "redis://:pw@ignored:6379/2?dial_timeout=5s",
		RedisSentinelAddrs: []string{"s1:26379", "s2:26379"}, RedisSentinelMaster: "mymaster"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Addrs, ",") != "s1:26379,s2:26379" || o.MasterName != "mymaster" || o.DB != 2 || o.Password != "pw" || o.DialTimeout != 5*time.Second {
		t.Errorf("sentinel: %+v", o)
	}
}

func TestAlibabaClients(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Accounts: []config.Account{
		{Name: "keys", UID: "1", Endpoint: "http://127.0.0.1:1", AccessKeyID: "ak", AccessKeySecret: "sk"},
		{Name: "chain-1", UID: "2", Endpoint: "http://127.0.0.1:1", CredentialsChain: true},
		{Name: "chain-2", UID: "3", Endpoint: "http://127.0.0.1:1", CredentialsChain: true},
	}}
	var seen []string
	var chains []any
	accounts, err := alibabaClients(cfg, func(a config.Account, c *alibaba.Config) {
		seen = append(seen, a.Name)
		if c.Credential != nil {
			chains = append(chains, c.Credential)
		}
		if (c.Credential != nil) != a.CredentialsChain {
			t.Errorf("%s: credential %v, chain %v", a.Name, c.Credential, a.CredentialsChain)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 3 || accounts[2].Name != "chain-2" || accounts[0].Client == nil || strings.Join(seen, ",") != "keys,chain-1,chain-2" {
		t.Errorf("accounts %+v, overrides seen for %v", accounts, seen)
	}
	if len(chains) != 2 || chains[0] != chains[1] {
		t.Errorf("the credentials chain is built once and shared: %v", chains)
	}
	cfg.Accounts = []config.Account{{Name: "nothing", UID: "4", Endpoint: "http://127.0.0.1:1"}}
	if _, err := alibabaClients(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "account nothing: no credentials") {
		t.Errorf("an account without credentials: %v", err)
	}
}
