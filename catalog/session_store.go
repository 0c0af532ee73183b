package catalog

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Browser sessions: a signed-in user holds a random session secret in a
// cookie; the catalog keeps only its SHA-256. The session's CSRF token is
// derived from the secret (SessionCSRF), so it is never stored either.
// Groups share the migration: both came with the admin pages.

func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0008_sessions_groups",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.AutoMigrate(&Session{}, &Group{}, &GroupMember{}); err != nil {
				return err
			}
			if !tx.Migrator().HasColumn(&Entitlement{}, "GroupID") {
				if err := tx.Migrator().AddColumn(&Entitlement{}, "GroupID"); err != nil {
					return err
				}
			}
			if !tx.Migrator().HasIndex(&Entitlement{}, "GroupID") {
				return tx.Migrator().CreateIndex(&Entitlement{}, "GroupID")
			}
			return nil
		},
	})
}

// Defaults of sessions.
const (
	// SessionLifetimeDefault is how long a session lasts after sign-in.
	SessionLifetimeDefault = 12 * time.Hour
	// sessionTouchGranularity throttles last-seen writes to one per session per minute.
	sessionTouchGranularity = time.Minute
	// sessionUserAgentMax clips the stored user agent.
	sessionUserAgentMax = 256
)

// SessionPrefix starts every session secret.
const SessionPrefix = "weirs_"

// SessionCookie is the name of the cookie that carries the raw session
// secret (set by the broker's POST /api/v1/session, read by broker and web).
const SessionCookie = "weir_session"

// SessionCSRFHeader is the request header that must carry SessionCSRF of the
// session cookie on every unsafe request (POST, PUT, PATCH, DELETE).
const SessionCSRFHeader = "X-CSRF-Token"

// Session is a signed-in browser session; only the SHA-256 of its secret is stored.
type Session struct {
	ID         int64     `gorm:"primaryKey" json:"id"`
	Hash       string    `gorm:"size:64;not null;uniqueIndex" json:"-"`
	UserID     int64     `gorm:"not null;index" json:"user_id"`
	CreatedAt  time.Time `gorm:"not null" json:"created_at"`
	ExpiresAt  time.Time `gorm:"not null;index" json:"expires_at"`
	LastSeenAt time.Time `gorm:"not null" json:"last_seen_at"`
	ClientIP   string    `gorm:"size:64;not null;default:''" json:"client_ip"`
	UserAgent  string    `gorm:"size:256;not null;default:''" json:"user_agent"`
}

// SessionCSRF returns the CSRF token of the session whose raw secret is raw:
// hex(HMAC-SHA256(key=raw, "weir-csrf")).
func SessionCSRF(raw string) string {
	m := hmac.New(sha256.New, []byte(raw))
	m.Write([]byte("weir-csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

// CreateSessionParams describes a new session.
type CreateSessionParams struct {
	UserID    int64
	ClientIP  string
	UserAgent string
	// Lifetime is how long the session lasts (SessionLifetimeDefault when 0).
	Lifetime time.Duration
}

// CreateSession starts a session for an enabled user and returns its raw
// secret, which is never readable again.
func (s *Store) CreateSession(ctx context.Context, p CreateSessionParams) (string, *Session, error) {
	if p.Lifetime < 0 {
		return "", nil, Invalid("lifetime", "must not be negative, got %s", p.Lifetime)
	}
	if p.Lifetime == 0 {
		p.Lifetime = SessionLifetimeDefault
	}
	u, err := s.GetUser(ctx, p.UserID)
	if err != nil {
		return "", nil, fmt.Errorf("create session: %w", err)
	}
	if u.Disabled {
		return "", nil, &AuthError{Reason: "user disabled"}
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	raw := SessionPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	now := s.now()
	sess := &Session{Hash: HashToken(raw), UserID: p.UserID, CreatedAt: now, ExpiresAt: now.Add(p.Lifetime),
		LastSeenAt: now, ClientIP: clip(p.ClientIP, auditIPMax), UserAgent: clip(p.UserAgent, sessionUserAgentMax)}
	if err := s.db.WithContext(ctx).Create(sess).Error; err != nil {
		return "", nil, fmt.Errorf("create session: %w", translate(err))
	}
	return raw, sess, nil
}

// AuthenticateSession resolves a raw session secret to its principal (with
// the entitlements of the user and its groups, read now) and the session.
// Unknown and expired sessions and disabled users are refused with an
// *AuthError. Last seen is recorded at most once a minute.
func (s *Store) AuthenticateSession(ctx context.Context, raw string) (*Principal, *Session, error) {
	if raw == "" {
		return nil, nil, &AuthError{Reason: "no session given"}
	}
	var sess Session
	err := s.db.WithContext(ctx).Where("hash = ?", HashToken(raw)).First(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, &AuthError{Reason: "unknown or ended session; sign in again"}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("authenticate session: %w", err)
	}
	now := s.now()
	if !sess.ExpiresAt.After(now) {
		return nil, nil, &AuthError{Reason: "session expired; sign in again"}
	}
	u, err := s.GetUser(ctx, sess.UserID)
	if err != nil {
		return nil, nil, fmt.Errorf("authenticate session: %w", err)
	}
	if u.Disabled {
		return nil, nil, &AuthError{Reason: "user disabled"}
	}
	ents, err := s.ListEntitlements(ctx, u.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("authenticate session: %w", err)
	}
	if now.Sub(sess.LastSeenAt) > sessionTouchGranularity {
		if err := s.db.WithContext(ctx).Model(&Session{}).Where("id = ?", sess.ID).Update("last_seen_at", now).Error; err != nil {
			s.log.Warn("record session use", "session_id", sess.ID, "error", err)
		} else {
			sess.LastSeenAt = now
		}
	}
	return &Principal{User: *u, SessionID: sess.ID, Entitlements: ents}, &sess, nil
}

// DeleteSession ends the session of raw; ending an unknown one is harmless.
func (s *Store) DeleteSession(ctx context.Context, raw string) error {
	if err := s.db.WithContext(ctx).Where("hash = ?", HashToken(raw)).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user and returns how many.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) (int64, error) {
	res := s.db.WithContext(ctx).Where("user_id = ?", userID).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete sessions of user %d: %w", userID, res.Error)
	}
	return res.RowsAffected, nil
}

// DeleteExpiredSessions removes the sessions expired by now and returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at <= ?", s.now()).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// ListSessions returns the live sessions of a user (every user's when
// userID is 0), newest first.
func (s *Store) ListSessions(ctx context.Context, userID int64) ([]Session, error) {
	q := s.db.WithContext(ctx).Where("expires_at > ?", s.now()).Order("id DESC")
	if userID != 0 {
		q = q.Where("user_id = ?", userID)
	}
	var out []Session
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}
