package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/distq/distq/internal/distribution"
)

// Answer is a front door's answer to a request, kept under the request's
// Idempotency-Key and given again, as it was, to a repeat of the request.
type Answer struct {
	Status int
	Body   []byte
}

// How long a repeat waits for the first request with its key to finish,
// and how often it looks.
const (
	idempotencyWait = 10 * time.Second
	idempotencyPoll = 20 * time.Millisecond
)

// Once runs do once per team and Idempotency-Key. request identifies what
// was asked (the front door's method, route and body): the first request
// with key runs do and its answer is kept for 24 h; a repeat with the same
// request gets that answer again (replayed true) without running do, one
// with another request is refused with CodeIdempotencyKeyReused. A repeat
// that arrives while the first still runs waits up to 10 s for it
// (CodeIdempotencyInProgress after). When do fails, the key is forgotten so
// that the caller may try again. An empty key runs do every time; a key
// that is not 1 to 255 printable ASCII characters is refused with
// CodeBadIdempotencyKey.
func (s *Service) Once(ctx context.Context, team, key string, request []byte, do func() (Answer, error)) (a Answer, replayed bool, err error) {
	if key == "" {
		a, err := do()
		return a, false, err
	}
	if len(key) > 255 || strings.IndexFunc(key, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) >= 0 {
		return Answer{}, false, errorf(CodeBadIdempotencyKey, "Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	sum := sha256.Sum256(request)
	hash := hex.EncodeToString(sum[:])
	deadline := time.Now().Add(idempotencyWait)
	for {
		prev, err := s.d.Idempotency.ClaimIdempotency(ctx, team, key, hash)
		switch {
		case errors.Is(err, distribution.ErrIdempotencyInFlight):
			if time.Now().After(deadline) {
				return Answer{}, false, errorf(CodeIdempotencyInProgress, "a request with this Idempotency-Key is still being processed; retry shortly")
			}
			select {
			case <-ctx.Done():
				return Answer{}, false, ctx.Err()
			case <-time.After(idempotencyPoll):
			}
			continue
		case err != nil:
			return Answer{}, false, err
		case prev != nil && prev.BodyHash != hash:
			return Answer{}, false, errorf(CodeIdempotencyKeyReused, "Idempotency-Key was used with a different request (another route, or another body): a key names one request of the team, whatever its route")
		case prev != nil:
			return Answer{Status: prev.Status, Body: prev.Response}, true, nil
		}
		break
	}
	defer s.d.Idempotency.KeepIdempotency(ctx, team, key, hash)()
	a, err = do()
	if err != nil {
		if aerr := s.d.Idempotency.AbandonIdempotency(context.WithoutCancel(ctx), team, key); aerr != nil {
			s.d.Log.Warn("abandon idempotency key", "err", aerr)
		}
		return Answer{}, false, err
	}
	if err := s.d.Idempotency.CompleteIdempotency(context.WithoutCancel(ctx), team, key, hash, a.Status, a.Body); err != nil {
		s.d.Log.Warn("store idempotency answer", "err", err)
	}
	return a, false, nil
}
