// Package redistest gives each test its own database on a real Redis server,
// so that tests sharing one server (TEST_REDIS_ADDR, default 127.0.0.1:6379)
// can run in parallel without seeing each other's keys.
//
// Databases 1–14 are leased (15 is distqbench's) through a lock key in database 0; a lease is
// renewed while the test runs and lapses on its own if the test process dies,
// so a killed run cannot block later ones for long. A leased database is
// emptied with FLUSHDB (never FLUSHALL) before and after use.
package redistest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	firstDB  = 1
	lastDB   = 14 // 15 is left to distqbench
	leaseTTL = 20 * time.Second
	lockKey  = "distq-test:db-lease:%d"
)

// Addr is the address of the test Redis server.
func Addr() string { return cmp.Or(os.Getenv("TEST_REDIS_ADDR"), "127.0.0.1:6379") }

// DB is a leased database on the test server.
type DB struct {
	Addr   string
	Number int
	Client *redis.Client
}

// URL returns the redis:// URL of the leased database.
func (d *DB) URL() string { return fmt.Sprintf("redis://%s/%d", d.Addr, d.Number) }

// Options returns connection options for the leased database.
func (d *DB) Options() *redis.Options { return &redis.Options{Addr: d.Addr, DB: d.Number} }

// New leases a database for the life of t, waiting for one to free if all are
// leased. It fails the test when no Redis answers at Addr.
func New(t testing.TB) *DB {
	t.Helper()
	addr := Addr()
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		t.Fatalf("redistest: no Redis at %s (set TEST_REDIS_ADDR, or run `make test`, which starts one): %v", addr, err)
	} else {
		c.Close()
	}
	ctx := context.Background()
	lock := redis.NewClient(&redis.Options{Addr: addr, DB: 0})
	token := fmt.Sprintf("%d-%d", os.Getpid(), rand.Int64())
	deadline := time.Now().Add(5 * time.Minute)
	for {
		start := firstDB + rand.IntN(lastDB-firstDB+1)
		for i := 0; i <= lastDB-firstDB; i++ {
			n := firstDB + (start-firstDB+i)%(lastDB-firstDB+1)
			ok, err := lock.SetNX(ctx, fmt.Sprintf(lockKey, n), token, leaseTTL).Result()
			if err != nil {
				t.Fatalf("redistest: lease db: %v", err)
			}
			if !ok {
				continue
			}
			return lease(t, lock, addr, n, token)
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: every database on %s stayed leased for 5 minutes", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lease(t testing.TB, lock *redis.Client, addr string, n int, token string) *DB {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf(lockKey, n)
	client := redis.NewClient(&redis.Options{Addr: addr, DB: n})
	if err := client.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("redistest: flush db %d: %v", n, err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(leaseTTL / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				lock.Expire(ctx, key, leaseTTL)
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		client.FlushDB(ctx)
		client.Close()
		// Release only our own lease.
		lock.Eval(ctx, `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`, []string{key}, token)
		lock.Close()
	})
	return &DB{Addr: addr, Number: n, Client: client}
}
