package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/webhook"
)

// Completion events are written by the same MULTI that makes them true: the
// Update that moves a batch's last item to a final state also writes the
// batch.finished event and its outbox entry (the script batchDoneSrc, run
// inside the transaction, sees the counts after the move), and the Update
// that ends a single distribution with a notify_url writes its
// distribution.finished event, and the UpdateDevices that ends a device
// distribution with a notify_url writes its device_distribution.finished
// event. A crash can therefore never separate "done"
// from "announced": the outbox holds every event not yet delivered, and
// internal/notify moves it onto its asynq queue (TaskID = event id) until it
// is delivered or given up.

func keyEvent(id string) string       { return prefix + "wh:e:" + id }
func keyBatchEvent(id string) string  { return prefix + "b:" + id + ":event" }
func keyRecordEvent(id string) string { return prefix + "d:" + id + ":event" }
func keyDevEvent(id string) string    { return keyDev(id) + ":event" }

// keyOutbox is a sorted set of event ids not yet delivered (nor given up),
// scored by when the outbox should look at them again (ms).
const keyOutbox = prefix + "wh:outbox"

// NewEventID returns a new event id (the webhook-id of its deliveries).
func NewEventID(now time.Time) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("msg_%012x%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// batchDoneSrc writes the batch.finished event when the batch KEYS[2] has a
// notify_url and no item left in a non-final state (KEYS[1], its counts).
// Run inside MULTI (with EVAL), after the counts changed. KEYS[3] event,
// KEYS[4] outbox, KEYS[5] the batch's event pointer. ARGV: event id, now
// (RFC 3339), now (ms), ttl (s).
const batchDoneSrc = `
local raw = redis.call("GET", KEYS[2])
if not raw then return 0 end
local b = cjson.decode(raw)
if type(b.notify_url) ~= "string" or b.notify_url == "" then return 0 end
local final = {succeeded = true, failed = true, canceled = true}
local flat = redis.call("HGETALL", KEYS[1])
local counts, size = {}, 0
for i = 1, #flat, 2 do
  local n = tonumber(flat[i + 1])
  if n ~= 0 and not final[flat[i]] then return 0 end
  counts[flat[i]] = n
  size = size + n
end
for _, st in ipairs({"queued", "submitting", "running", "succeeded", "failed", "canceled"}) do
  if counts[st] == nil then counts[st] = 0 end
end
b.size = size
b.counts = counts
b.done = true
local body = cjson.encode({type = "batch.finished", timestamp = ARGV[2], data = b})
redis.call("DEL", KEYS[3])
redis.call("HSET", KEYS[3], "id", ARGV[1], "type", "batch.finished", "subject", b.id, "team", b.team,
  "url", b.notify_url, "created", ARGV[2], "body", body, "state", "pending", "attempts", 0, "window_start", ARGV[3])
redis.call("EXPIRE", KEYS[3], ARGV[4])
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[1])
redis.call("SET", KEYS[5], ARGV[1])
return 1`

// announce queues, inside the transaction p, the event that r's move to a
// final state makes true, if any.
func (s *Redis) announce(ctx context.Context, p redis.Pipeliner, r *Record) {
	now := s.now()
	id := NewEventID(now)
	if r.BatchID != "" {
		p.Eval(ctx, batchDoneSrc, []string{keyBatchCounts(r.BatchID), keyBatch(r.BatchID), keyEvent(id), keyOutbox, keyBatchEvent(r.BatchID)},
			id, now.Format(time.RFC3339Nano), now.UnixMilli(), int64(s.eventTTL().Seconds()))
		return
	}
	if r.NotifyURL == "" {
		return
	}
	s.writeEvent(ctx, p, now, webhook.TypeDistributionFinished, r.ID, r.Team, r.NotifyURL, r.Distribution, keyRecordEvent(r.ID))
}

// announceDevices queues, inside the transaction p, the
// device_distribution.finished event of r, which has just reached a final
// state, if it has a notify_url.
func (s *Redis) announceDevices(ctx context.Context, p redis.Pipeliner, r *devices.Record) {
	if r.NotifyURL == "" {
		return
	}
	s.writeEvent(ctx, p, s.now(), webhook.TypeDeviceDistributionFinished, r.ID, r.Team, r.NotifyURL, r.EventData(), keyDevEvent(r.ID))
}

// writeEvent queues, inside the transaction p, a new pending event of
// type typ about subject with data, due now, and points ptr (the
// subject's latest event) at it.
func (s *Redis) writeEvent(ctx context.Context, p redis.Pipeliner, now time.Time, typ, subject, team, url string, data any, ptr string) {
	id := NewEventID(now)
	body, _ := json.Marshal(struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      any       `json:"data"`
	}{typ, now, data})
	p.HSet(ctx, keyEvent(id), "id", id, "type", typ, "subject", subject, "team", team,
		"url", url, "created", now.Format(time.RFC3339Nano), "body", body, "state", webhook.StatePending,
		"attempts", 0, "window_start", now.UnixMilli())
	p.Expire(ctx, keyEvent(id), s.eventTTL())
	p.ZAdd(ctx, keyOutbox, redis.Z{Score: float64(now.UnixMilli()), Member: id})
	p.Set(ctx, ptr, id, s.retention)
}

// announceEmptyBatch queues the batch.finished event of a batch with a
// notify_url of which no item was accepted: it is done as it is written.
func (s *Redis) announceEmptyBatch(ctx context.Context, p redis.Pipeliner, b string) {
	now := s.now()
	id := NewEventID(now)
	p.Eval(ctx, batchDoneSrc, []string{keyBatchCounts(b), keyBatch(b), keyEvent(id), keyOutbox, keyBatchEvent(b)},
		id, now.Format(time.RFC3339Nano), now.UnixMilli(), int64(s.eventTTL().Seconds()))
}

// eventTTL keeps an event at least as long as retries may run.
func (s *Redis) eventTTL() time.Duration { return max(s.retention, 2*webhook.DefaultMaxAge) }

// Event returns the event id, or ErrNotFound.
func (s *Redis) Event(ctx context.Context, id string) (*webhook.Event, error) {
	m, err := s.rdb.HGetAll(ctx, keyEvent(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get event %s: %w", id, err)
	}
	if len(m) == 0 || m["id"] == "" {
		return nil, ErrNotFound
	}
	ev := &webhook.Event{ID: m["id"], Type: m["type"], Subject: m["subject"], Team: m["team"], URL: m["url"], Body: []byte(m["body"])}
	ev.CreatedAt, _ = time.Parse(time.RFC3339Nano, m["created"])
	ev.State = m["state"]
	ev.Attempts, _ = strconv.Atoi(m["attempts"])
	ev.LastStatus, _ = strconv.Atoi(m["last_status"])
	ev.LastError = m["last_error"]
	ev.LastAttemptAt = msTime(m["last_attempt"])
	ev.NextRetryAt = msTime(m["next_retry"])
	ev.DeliveredAt = msTime(m["delivered"])
	if t := msTime(m["window_start"]); t != nil {
		ev.WindowStart = *t
	}
	return ev, nil
}

func msTime(s string) *time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

func msOf(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixMilli()
}

// BatchEvent returns the latest batch.finished event of batch id, or nil
// when it has none.
func (s *Redis) BatchEvent(ctx context.Context, batchID string) (*webhook.Event, error) {
	return s.latestEvent(ctx, keyBatchEvent(batchID), batchID)
}

// DeviceEvent returns the latest device_distribution.finished event of
// device distribution id, or nil when it has none.
func (s *Redis) DeviceEvent(ctx context.Context, id string) (*webhook.Event, error) {
	return s.latestEvent(ctx, keyDevEvent(id), id)
}

// latestEvent returns the event ptr points at, or nil.
func (s *Redis) latestEvent(ctx context.Context, ptr, subject string) (*webhook.Event, error) {
	id, err := s.rdb.Get(ctx, ptr).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get the event of %s: %w", subject, err)
	}
	ev, err := s.Event(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return ev, err
}

// saveDelivery updates an event's delivery state if the event still
// exists (an expired one is not brought back half-written).
var saveDelivery = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], "state", ARGV[1], "attempts", ARGV[2], "last_attempt", ARGV[3], "last_status", ARGV[4],
  "last_error", ARGV[5], "next_retry", ARGV[6], "delivered", ARGV[7])
if ARGV[8] == "done" then redis.call("ZREM", KEYS[2], ARGV[9]) else redis.call("ZADD", KEYS[2], ARGV[8], ARGV[9]) end
return 1`)

// SaveDelivery records the delivery state of event id. When the event is
// delivered or given up it leaves the outbox; otherwise the outbox looks at
// it again at recheck (in case its queued task was lost).
func (s *Redis) SaveDelivery(ctx context.Context, id string, d webhook.Delivery, recheck time.Time) error {
	out := "done"
	if d.State == webhook.StatePending {
		out = strconv.FormatInt(recheck.UnixMilli(), 10)
	}
	return saveDelivery.Run(ctx, s.rdb, []string{keyEvent(id), keyOutbox}, d.State, d.Attempts, msOf(d.LastAttemptAt),
		d.LastStatus, d.LastError, msOf(d.NextRetryAt), msOf(d.DeliveredAt), out, id).Err()
}

// resend puts an event back to pending with a fresh window of attempts,
// clearing what belonged to the previous window (its delivery, the last
// attempt's time, status and error): a pending event with no attempt shows
// none.
var resend = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], "state", "pending", "attempts", 0, "window_start", ARGV[1], "next_retry", 0)
redis.call("HDEL", KEYS[1], "delivered", "last_attempt", "last_status", "last_error")
redis.call("ZADD", KEYS[2], ARGV[1], ARGV[2])
return 1`)

// Resend makes event id pending again, due now, with a new window of
// retries; its id (the webhook-id) stays the same. ErrNotFound when it
// expired.
func (s *Redis) Resend(ctx context.Context, id string) error {
	n, err := resend.Run(ctx, s.rdb, []string{keyEvent(id), keyOutbox}, s.now().UnixMilli(), id).Int()
	if err != nil {
		return fmt.Errorf("resend %s: %w", id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DueEvents returns up to n ids of outbox events due at now, and moves each
// to now+recheck: whoever takes them enqueues their delivery.
func (s *Redis) DueEvents(ctx context.Context, now time.Time, recheck time.Duration, n int64) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: keyOutbox, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: n}).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	zs := make([]redis.Z, len(ids))
	for i, id := range ids {
		zs[i] = redis.Z{Score: float64(now.Add(recheck).UnixMilli()), Member: id}
	}
	if err := s.rdb.ZAddXX(ctx, keyOutbox, zs...).Err(); err != nil {
		return nil, err
	}
	return ids, nil
}

// DropEvent removes an event that no longer exists from the outbox.
func (s *Redis) DropEvent(ctx context.Context, id string) error {
	return s.rdb.ZRem(ctx, keyOutbox, id).Err()
}
