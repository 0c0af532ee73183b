package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gorm.io/gorm"
)

// ErrUnauthenticated means a credential is missing, unknown, expired or revoked.
var ErrUnauthenticated = errors.New("unauthenticated")

// AuthError says why a credential was refused; it wraps ErrUnauthenticated.
type AuthError struct{ Reason string }

func (e *AuthError) Error() string { return "unauthenticated: " + e.Reason }
func (e *AuthError) Unwrap() error { return ErrUnauthenticated }

// TokenPrefix starts every Weir API token, so that secret scanners can find them.
const TokenPrefix = "weir_"

// NewTokenSecret returns a fresh random API token.
func NewTokenSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return TokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// HashToken is how a token is stored: SHA-256, hex. Tokens carry 256 random
// bits, so a fast hash is safe; passwords use a slow one.
func HashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Principal is an authenticated caller with the grants that apply to it.
type Principal struct {
	User User
	// TokenID is the API token used, 0 for a session.
	TokenID int64
	// SessionID is the browser session used, 0 for a token.
	SessionID int64
	// Entitlements are the user's and its groups', read for this request.
	Entitlements []Entitlement
}

// roleActions lists the actions each role may take at all; an entitlement
// must still grant them on the resource. Admins may do everything.
var roleActions = map[string][]string{
	RoleViewer:    {ActionRead},
	RoleSubmitter: {ActionRead, ActionSubmit},
	RoleOperator:  {ActionRead, ActionSubmit, ActionCancel, ActionManage},
}

// RoleAllows reports whether a user of role may take action at all.
func RoleAllows(role, action string) bool {
	return role == RoleAdmin || oneOf(action, roleActions[role])
}

// Allowed reports whether p may do action on resource from ip: the user's
// role must allow the action and an entitlement must grant it on the
// resource, from a network it lists. Admins may do everything.
func (p *Principal) Allowed(action, resource string, ip netip.Addr) bool {
	if p.User.Role == RoleAdmin {
		return true
	}
	if !RoleAllows(p.User.Role, action) {
		return false
	}
	for _, e := range p.Entitlements {
		if e.Action != action || !ResourceMatches(e.Resource, resource) {
			continue
		}
		if len(e.CIDRs.V) == 0 {
			return true
		}
		for _, c := range e.CIDRs.V {
			if pfx, err := parseCIDR(c); err == nil && ip.IsValid() && pfx.Contains(ip.Unmap()) {
				return true
			}
		}
	}
	return false
}

// parseCIDR parses a network and gives IPv4-mapped IPv6 networks
// (::ffff:10.0.0.0/104) as the IPv4 network they are (10.0.0.0/8), since
// client addresses are compared unmapped.
func parseCIDR(c string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(c)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked(), nil
}

// ResourceMatches reports whether a grant on pattern covers resource.
// Patterns: "*", "kind:*", or an exact "kind:name".
func ResourceMatches(pattern, resource string) bool {
	if pattern == "*" || pattern == resource {
		return true
	}
	if kind, ok := strings.CutSuffix(pattern, ":*"); ok {
		return strings.HasPrefix(resource, kind+":")
	}
	return false
}

// ValidRoles lists the user roles.
var ValidRoles = []string{RoleViewer, RoleSubmitter, RoleOperator, RoleAdmin}

// ValidActions lists the actions entitlements grant.
var ValidActions = []string{ActionRead, ActionSubmit, ActionCancel, ActionManage, ActionAdmin}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// CreateUser inserts a user; an existing name is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if err := ValidateName("name", u.Name); err != nil {
		return err
	}
	if u.Role == "" {
		u.Role = RoleViewer
	}
	if !oneOf(u.Role, ValidRoles) {
		return Invalid("role", "must be one of %s; got %q", strings.Join(ValidRoles, ", "), u.Role)
	}
	if err := translate(s.db.WithContext(ctx).Create(u).Error); err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, err)
	}
	return nil
}

// GetUser returns a user by ID.
func (s *Store) GetUser(ctx context.Context, id int64) (*User, error) {
	var u User
	if err := translate(s.db.WithContext(ctx).First(&u, id).Error); err != nil {
		return nil, fmt.Errorf("get user %d: %w", id, err)
	}
	return &u, nil
}

// GetUserByName returns a user by name.
func (s *Store) GetUserByName(ctx context.Context, name string) (*User, error) {
	var u User
	if err := translate(s.db.WithContext(ctx).Where("name = ?", name).First(&u).Error); err != nil {
		return nil, fmt.Errorf("get user %s: %w", name, err)
	}
	return &u, nil
}

// ListUsers returns every user by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var us []User
	return us, s.db.WithContext(ctx).Order("name").Find(&us).Error
}

// UpdateUserParams changes a user; nil fields stay.
type UpdateUserParams struct {
	ID       int64
	Role     *string
	Disabled *bool
}

// UpdateUser changes a user's role or disabled flag; disabling a user ends
// its sessions.
func (s *Store) UpdateUser(ctx context.Context, p UpdateUserParams) (*User, error) {
	up := map[string]any{"updated_at": s.now()}
	if p.Role != nil {
		if !oneOf(*p.Role, ValidRoles) {
			return nil, Invalid("role", "must be one of %s; got %q", strings.Join(ValidRoles, ", "), *p.Role)
		}
		up["role"] = *p.Role
	}
	if p.Disabled != nil {
		up["disabled"] = *p.Disabled
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("id = ?", p.ID).Updates(up)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if p.Disabled != nil && *p.Disabled {
			return tx.Where("user_id = ?", p.ID).Delete(&Session{}).Error
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update user %d: %w", p.ID, err)
	}
	return s.GetUser(ctx, p.ID)
}

// CreateTokenParams describes a new API token.
type CreateTokenParams struct {
	UserID    int64
	Name      string
	ExpiresAt *time.Time
	// Secret, when set, is used instead of a random secret (WEIR_ADMIN_TOKEN).
	Secret string
}

// CreateToken stores a new token for a user and returns its secret, which is
// never readable again.
func (s *Store) CreateToken(ctx context.Context, p CreateTokenParams) (string, *Token, error) {
	if strings.TrimSpace(p.Name) == "" || len(p.Name) > 128 {
		return "", nil, Invalid("name", "a token needs a name of 1-128 characters")
	}
	if p.ExpiresAt != nil && !p.ExpiresAt.After(s.now()) {
		return "", nil, Invalid("expires_at", "must be in the future")
	}
	secret := p.Secret
	if secret == "" {
		secret = NewTokenSecret()
	} else if len(secret) < 16 {
		return "", nil, Invalid("token", "a token must be at least 16 characters long")
	}
	if _, err := s.GetUser(ctx, p.UserID); err != nil {
		return "", nil, err
	}
	var expires *time.Time
	if p.ExpiresAt != nil {
		e := p.ExpiresAt.UTC()
		expires = &e
	}
	t := &Token{UserID: p.UserID, Name: p.Name, Hash: HashToken(secret), Prefix: tokenPrefix(secret), ExpiresAt: expires}
	if err := translate(s.db.WithContext(ctx).Create(t).Error); err != nil {
		return "", nil, fmt.Errorf("create token %s: %w", p.Name, err)
	}
	return secret, t, nil
}

// tokenPrefix is the part of a secret kept in clear to tell tokens apart: at
// most 12 characters and never more than a quarter of the secret, so that a
// short chosen secret (WEIR_ADMIN_TOKEN) is not mostly given away.
func tokenPrefix(secret string) string {
	return secret[:min(12, len(secret)/4)]
}

// ListTokens returns a user's tokens (every user's when userID is 0), newest first.
func (s *Store) ListTokens(ctx context.Context, userID int64) ([]Token, error) {
	q := s.db.WithContext(ctx).Order("id DESC")
	if userID != 0 {
		q = q.Where("user_id = ?", userID)
	}
	var ts []Token
	return ts, q.Find(&ts).Error
}

// RevokeToken revokes a token at once; revoking twice is harmless.
func (s *Store) RevokeToken(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Model(&Token{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.now())
	if res.Error != nil {
		return fmt.Errorf("revoke token %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		var n int64
		s.db.WithContext(ctx).Model(&Token{}).Where("id = ?", id).Count(&n)
		if n == 0 {
			return fmt.Errorf("revoke token %d: %w", id, ErrNotFound)
		}
	}
	return nil
}

// lastUsedGranularity throttles last-use writes to one per token per minute.
const lastUsedGranularity = time.Minute

// Authenticate resolves a raw API token to its principal, refusing unknown,
// expired and revoked tokens and disabled users.
func (s *Store) Authenticate(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, &AuthError{Reason: "no token given"}
	}
	var t Token
	err := s.db.WithContext(ctx).Where("hash = ?", HashToken(raw)).First(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &AuthError{Reason: "unknown token"}
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	now := s.now()
	if t.RevokedAt != nil {
		return nil, &AuthError{Reason: "token revoked"}
	}
	if t.ExpiresAt != nil && !t.ExpiresAt.After(now) {
		return nil, &AuthError{Reason: "token expired"}
	}
	u, err := s.GetUser(ctx, t.UserID)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if u.Disabled {
		return nil, &AuthError{Reason: "user disabled"}
	}
	ents, err := s.ListEntitlements(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > lastUsedGranularity {
		if err := s.db.WithContext(ctx).Model(&Token{}).Where("id = ?", t.ID).Update("last_used_at", now).Error; err != nil {
			s.log.Warn("record token use", "token_id", t.ID, "error", err)
		}
	}
	return &Principal{User: *u, TokenID: t.ID, Entitlements: ents}, nil
}

// CreateEntitlement grants an action on a resource to a user (UserID) or
// to every member of a group (GroupID, with UserID 0).
func (s *Store) CreateEntitlement(ctx context.Context, e *Entitlement) error {
	if !oneOf(e.Action, ValidActions) {
		return Invalid("action", "must be one of %s; got %q", strings.Join(ValidActions, ", "), e.Action)
	}
	if err := validateResource(e.Resource); err != nil {
		return err
	}
	cidrs := make([]string, 0, len(e.CIDRs.V))
	for i, c := range e.CIDRs.V {
		pfx, err := parseCIDR(c)
		if err != nil {
			return Invalid(fmt.Sprintf("cidrs[%d]", i), "%q is not a CIDR such as 10.0.0.0/8", c)
		}
		cidrs = append(cidrs, pfx.String())
	}
	if e.CIDRs.V != nil {
		e.CIDRs.V = cidrs // stored in canonical form: 10.1.2.3/8 is 10.0.0.0/8
	}
	switch {
	case e.GroupID != nil && e.UserID != 0:
		return Invalid("group_id", "grant to a user or to a group, not both")
	case e.GroupID != nil:
		if _, err := s.GetGroup(ctx, *e.GroupID); err != nil {
			return err
		}
	default:
		if _, err := s.GetUser(ctx, e.UserID); err != nil {
			return err
		}
	}
	if err := s.db.WithContext(ctx).Create(e).Error; err != nil {
		return fmt.Errorf("create entitlement: %w", translate(err))
	}
	return nil
}

func validateResource(r string) error {
	if r == "*" {
		return nil
	}
	kind, name, ok := strings.Cut(r, ":")
	if !ok || (kind != "mapping" && kind != "system" && kind != "function") {
		return Invalid("resource", "%q must be *, or KIND:NAME or KIND:* with KIND mapping, system or function", r)
	}
	if name == "*" {
		return nil
	}
	return ValidateName("resource", name)
}

// ListEntitlements returns the entitlements that apply to a user: its own
// and those of its groups (GroupID set). With userID 0 it returns every
// entitlement, of users and of groups.
func (s *Store) ListEntitlements(ctx context.Context, userID int64) ([]Entitlement, error) {
	q := s.db.WithContext(ctx).Order("id")
	if userID != 0 {
		q = q.Where("user_id = ? OR group_id IN (?)", userID,
			s.db.Model(&GroupMember{}).Select("group_id").Where("user_id = ?", userID))
	}
	var es []Entitlement
	return es, q.Find(&es).Error
}

// ListGroupEntitlements returns the entitlements granted to a group.
func (s *Store) ListGroupEntitlements(ctx context.Context, groupID int64) ([]Entitlement, error) {
	var es []Entitlement
	if err := s.db.WithContext(ctx).Where("group_id = ?", groupID).Order("id").Find(&es).Error; err != nil {
		return nil, fmt.Errorf("list entitlements of group %d: %w", groupID, err)
	}
	return es, nil
}

// DeleteEntitlement revokes a grant.
func (s *Store) DeleteEntitlement(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Delete(&Entitlement{}, id)
	if res.Error != nil {
		return fmt.Errorf("delete entitlement %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete entitlement %d: %w", id, ErrNotFound)
	}
	return nil
}
