package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/devstack"
)

func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// startRedis starts a private redis-server (or sentinel) from a config.
func startRedis(t *testing.T, name, conf string, sentinel bool) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf+"\ndir "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{path}
	if sentinel {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func waitPing(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
	}
	t.Fatalf("redis at %s did not start", addr)
}

// The api and the worker work through Redis Sentinel, and keep working
// after the master is switched.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (.ci/run installs it)")
	}
	masterAddr, masterPort := freeAddr(t)
	replicaAddr, replicaPort := freeAddr(t)
	sentinelAddr, sentinelPort := freeAddr(t)
	startRedis(t, "master", fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no", masterPort), false)
	startRedis(t, "replica", fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\nreplicaof 127.0.0.1 %d", replicaPort, masterPort), false)
	waitPing(t, masterAddr)
	waitPing(t, replicaAddr)
	startRedis(t, "sentinel", fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor distq 127.0.0.1 %d 1\nsentinel down-after-milliseconds distq 1000\nsentinel failover-timeout distq 5000", sentinelPort, masterPort), true)
	waitPing(t, sentinelAddr)

	st, err := devstack.Start(context.Background(), devstack.Options{
		RedisURL: "redis://" + masterAddr + "/0",
		Sim:      fastSim(),
		Env:      map[string]string{"DISTQ_REDIS_SENTINEL_ADDRS": sentinelAddr, "DISTQ_REDIS_SENTINEL_MASTER": "distq"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	c := newAPI(t, st.APIURL, st.Token)
	if d := c.waitFinal(c.submit(req("a1sentinel1")).ID, 30*time.Second); d.State != client.StateSucceeded {
		t.Fatalf("before failover: %+v", d)
	}

	sent := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr})
	defer sent.Close()
	// The replica must have caught up before it can be promoted.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := sent.Failover(context.Background(), "distq").Err(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("failover: %v", err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		addr, err := sent.GetMasterAddrByName(context.Background(), "distq").Result()
		if err == nil && len(addr) == 2 && addr[1] == fmt.Sprint(replicaPort) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master did not switch: %v %v", addr, err)
		}
	}
	// Writes accepted by the old master between the switch and its
	// demotion are lost (Redis replication is asynchronous): wait for it to
	// follow the new master before judging.
	old := redis.NewClient(&redis.Options{Addr: masterAddr})
	defer old.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		role, err := old.Do(context.Background(), "ROLE").Slice()
		if err == nil && role[0] == "slave" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old master was not demoted: %v %v", role, err)
		}
	}
	// After the switch: accepted and finished through the new master.
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, _, err := c.Submit(t.Context(), req("a1sentinel2"), "")
		if err == nil {
			if got := c.waitFinal(d.ID, 60*time.Second); got.State != client.StateSucceeded {
				t.Fatalf("after failover: %+v", got)
			}
			break
		}
		if e := apiError(t, err); e.Status != 503 || time.Now().After(deadline) {
			t.Fatalf("submit after failover: %v", e)
		}
		time.Sleep(200 * time.Millisecond)
	}
	role, err := redis.NewClient(&redis.Options{Addr: replicaAddr}).Do(context.Background(), "ROLE").Slice()
	if err != nil || role[0] != "master" {
		t.Fatalf("the old replica's role: %v %v, want master", role, err)
	}
}
