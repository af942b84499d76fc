package app

import (
	"cmp"
	"fmt"
	"time"

	credential "github.com/aliyun/credentials-go/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/queue"
)

// Redis connects to the configured Redis (one server or Sentinel).
func Redis(cfg *config.Config) (redis.UniversalClient, error) {
	opts, err := redisOptions(cfg)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(opts), nil
}

// redisOptions returns the go-redis options for the configured Redis: one
// server, or a Sentinel-watched master.
func redisOptions(cfg *config.Config) (*redis.UniversalOptions, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("DISTQ_REDIS_URL: %w", err)
	}
	u := &redis.UniversalOptions{
		Addrs:    []string{opt.Addr},
		DB:       opt.DB,
		Username: opt.Username,
		Password: opt.Password,
		// The api must answer 503 quickly while Redis is away, not hang.
		DialTimeout:  cmp.Or(opt.DialTimeout, 2*time.Second),
		ReadTimeout:  cmp.Or(opt.ReadTimeout, 3*time.Second),
		WriteTimeout: cmp.Or(opt.WriteTimeout, 3*time.Second),
		TLSConfig:    opt.TLSConfig,
	}
	if len(cfg.RedisSentinelAddrs) > 0 {
		u.Addrs = cfg.RedisSentinelAddrs
		u.MasterName = cfg.RedisSentinelMaster
	}
	return u, nil
}

// alibabaClients builds one Alibaba client per configured account. The SDK's
// default credential chain is built once, and only when an account uses it;
// override, if not nil, adjusts each client's settings (tests, benchmarks).
func alibabaClients(cfg *config.Config, override func(config.Account, *alibaba.Config)) ([]*queue.Account, error) {
	var chain credential.Credential
	var out []*queue.Account
	for _, a := range cfg.Accounts {
		cc := alibaba.Config{Endpoint: a.Endpoint, AccessKeyID: a.AccessKeyID, AccessKeySecret: a.AccessKeySecret, Timeout: cfg.AlibabaTimeout}
		if a.CredentialsChain && a.AccessKeyID == "" {
			if chain == nil {
				c, err := credential.NewCredential(nil)
				if err != nil {
					return nil, fmt.Errorf("account %s: credentials chain: %w", a.Name, err)
				}
				chain = c
			}
			cc.Credential = chain
		}
		if override != nil {
			override(a, &cc)
		}
		c, err := alibaba.NewClient(cc)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", a.Name, err)
		}
		out = append(out, &queue.Account{Account: a, Client: c})
	}
	return out, nil
}
