package store

import (
	"context"
	"testing"
	"time"
)

// TestTokenExpiry: a token with an expiry works until then and is refused
// from then on; an expiry in the past is refused; the list shows it.
func TestTokenExpiry(t *testing.T) {
	s, _ := openInternal(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	if err := s.CreateUser(ctx, &User{Username: "ann", Password: "password1"}); err != nil {
		t.Fatal(err)
	}
	past := now.Add(-time.Second)
	if _, _, err := s.CreateTokenExpiring(ctx, "ann", "ci", ScopeRead, &past); ErrorFields(err)["expiresAt"] == "" {
		t.Errorf("an expiry in the past: %v, want a field error", err)
	}
	until := now.Add(30 * 24 * time.Hour)
	value, tok, err := s.CreateTokenExpiring(ctx, "ann", "ci", ScopeRead, &until)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(until) {
		t.Errorf("the new token expires at %v, want %v", tok.ExpiresAt, until)
	}
	forever, _, err := s.CreateToken(ctx, "ann", "forever", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	now = until.Add(-time.Second)
	if _, _, err := s.AuthenticateToken(ctx, value); err != nil {
		t.Errorf("a second before its expiry: %v", err)
	}
	now = until
	if _, _, err := s.AuthenticateToken(ctx, value); ErrorCode(err) != EUNAUTHORIZED {
		t.Errorf("at its expiry: %v, want EUNAUTHORIZED", err)
	}
	if _, _, err := s.AuthenticateToken(ctx, forever); err != nil {
		t.Errorf("a token without expiry: %v", err)
	}
	list, err := s.ListTokens(ctx, "ann")
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if list[0].ExpiresAt == nil || !list[0].ExpiresAt.Equal(until) || !list[0].Expired(now) || list[1].ExpiresAt != nil || list[1].Expired(now) {
		t.Errorf("listed: %+v, %+v", list[0], list[1])
	}
}

// TestTokenLastUsed: using a token records when, once a minute at most
// (lastUsedPrecision), so that a client calling many times a second does
// not write the database each time.
func TestTokenLastUsed(t *testing.T) {
	s, _ := openInternal(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	if err := s.CreateUser(ctx, &User{Username: "ann", Password: "password1"}); err != nil {
		t.Fatal(err)
	}
	value, _, err := s.CreateToken(ctx, "ann", "ci", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() *time.Time {
		t.Helper()
		list, err := s.ListTokens(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		return list[0].LastUsed
	}
	if lastUsed() != nil {
		t.Fatal("a new token has been used")
	}
	first := now
	for _, step := range []struct {
		after time.Duration
		want  time.Time
	}{
		{0, first},
		{30 * time.Second, first},
		{lastUsedPrecision - time.Millisecond, first},
		{lastUsedPrecision, first.Add(lastUsedPrecision)},
	} {
		now = first.Add(step.after)
		if _, _, err := s.AuthenticateToken(ctx, value); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); got == nil || !got.Equal(step.want) {
			t.Errorf("used at +%v: last used %v, want %v", step.after, got, step.want)
		}
	}
}
