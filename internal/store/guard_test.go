package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
)

// The api's undo after a failed enqueue races a worker that already got the
// task (the enqueue was written, its answer lost): the undo deletes only
// records no worker touched; a record with a Create marker survives, and so
// does the way to its remote job.
func TestDeleteIfUntouchedSparesWorkedRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	now := time.Now().UTC()
	untouched, worked := newRecord("t", "pkA", now), newRecord("t", "pkB", now)
	if _, err := s.Insert(ctx, nil, []*Record{untouched, worked}); err != nil {
		t.Fatal(err)
	}
	// A worker marks its Create as sent.
	if _, err := s.Update(ctx, worked.ID, func(r *Record) error {
		r.State, r.CreateSentAt = distribution.StateSubmitting, &now
		r.Attempts++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	kept, err := s.DeleteIfUntouched(ctx, []*Record{untouched, worked})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0] != worked.ID {
		t.Fatalf("kept %v, want only %s", kept, worked.ID)
	}
	if _, err := s.Get(ctx, untouched.ID); err != ErrNotFound {
		t.Fatalf("untouched record: %v, want deleted", err)
	}
	r, err := s.Get(ctx, worked.ID)
	if err != nil || r.CreateSentAt == nil {
		t.Fatalf("worked record %+v, %v; want it kept with its marker", r, err)
	}
	if owner, _ := s.ActiveOwner(ctx, "1", "pkB", "iotx-dst"); owner != worked.ID {
		t.Fatalf("active key of the kept record: %q", owner)
	}
	if owner, _ := s.ActiveOwner(ctx, "1", "pkA", "iotx-dst"); owner != "" {
		t.Fatalf("active key of the deleted record still held by %q", owner)
	}
	// The blind Delete would have removed both: that is the hole.
}

// A remote job is claimed by one distribution only.
func TestClaimJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	if o, err := s.ClaimJob(ctx, "J1", "d1"); err != nil || o != "d1" {
		t.Fatalf("first claim = %q, %v", o, err)
	}
	if o, err := s.ClaimJob(ctx, "J1", "d2"); err != nil || o != "d1" {
		t.Fatalf("second claim = %q, %v; want d1 to keep it", o, err)
	}
	if o, err := s.ClaimJob(ctx, "J1", "d1"); err != nil || o != "d1" {
		t.Fatalf("repeat claim = %q, %v", o, err)
	}
	if o, err := s.JobOwner(ctx, "J2"); err != nil || o != "" {
		t.Fatalf("owner of an unclaimed job = %q, %v", o, err)
	}
}

// Without replicas WaitReplicas does nothing; it never blocks a lone master.
func TestWaitReplicasWithoutReplicas(t *testing.T) {
	t.Parallel()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	if err := s.WaitReplicas(context.Background(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// With a replica that does not acknowledge (stopped), WaitReplicas fails
// closed: the caller must not send the Create its marker guards.
func TestWaitReplicasFailsClosed(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	mport, rport := port(), port()
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	start("--port", fmt.Sprint(mport))
	replica := start("--port", fmt.Sprint(rport), "--replicaof", "127.0.0.1", fmt.Sprint(mport))
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", mport)})
	defer rdb.Close()
	ctx := context.Background()
	s := NewRedis(rdb, time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, _ := rdb.Info(ctx, "replication").Result()
		if infoInt(info, "connected_slaves") == 1 && strings.Contains(info, "state=online") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica never came online: %s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReplicas(ctx, 2*time.Second); err != nil {
		t.Fatalf("with a live replica: %v", err)
	}
	if err := replica.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer replica.Process.Signal(syscall.SIGCONT)
	if err := rdb.Set(ctx, "k", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReplicas(ctx, 200*time.Millisecond); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("with a stopped replica: %v, want ErrNotReplicated", err)
	}
}
