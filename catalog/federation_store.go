package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Federation: what one region's catalog keeps about the others.
//
//   - The mapping directory (federation_mappings): the names of the mappings
//     other regions own, pulled from each of them, so that a broker that
//     does not hold a mapping knows which region to forward its runs to,
//     even while that region is unreachable.
//   - Replication state (federation_syncs): per peer region and stream
//     (identity, directory), when it was last pulled, whether that worked,
//     and the digest of what was applied: the replication lag is the time
//     since the last success.
//   - The identity snapshot: users, tokens (hashes only) and entitlements
//     exported by the authoritative region and applied whole by the others,
//     in one transaction, with the authoritative region's IDs.
//
// Membership (gossip) is recorded in the nodes table with RecordNodeAlive
// and RecordNodeGone.
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0006_federation",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&FederationMapping{}, &FederationSync{})
		},
	})
}

// Replication streams a region pulls from its peers.
const (
	// SyncIdentity is the stream of users, tokens and entitlements from
	// the authoritative region.
	SyncIdentity = "identity"
	// SyncDirectory is the stream of a peer region's mapping names.
	SyncDirectory = "directory"
)

// FederationMapping is one entry of the mapping directory: a mapping that
// Region owns, as that region last reported it.
type FederationMapping struct {
	Region   string    `gorm:"primaryKey;size:64" json:"region"`
	Name     string    `gorm:"primaryKey;size:128;index:idx_federation_mappings_name" json:"name"`
	Version  int       `gorm:"not null" json:"version"`
	Enabled  bool      `gorm:"not null" json:"enabled"`
	SyncedAt time.Time `gorm:"not null" json:"synced_at"`
}

// TableName names the directory's table.
func (FederationMapping) TableName() string { return "federation_mappings" }

// FederationSync is the replication state of one stream pulled from one
// peer region.
type FederationSync struct {
	Region string `gorm:"primaryKey;size:64" json:"region"`
	Stream string `gorm:"primaryKey;size:32" json:"stream"`
	// Digest identifies the data last applied (the peer's ETag).
	Digest string `gorm:"size:64;not null;default:''" json:"digest,omitempty"`
	// Rows is how many rows the last applied data held.
	Rows          int        `gorm:"not null;default:0" json:"rows"`
	LastAttemptAt time.Time  `gorm:"not null" json:"last_attempt_at"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	// LastChangeAt is when applied data last changed.
	LastChangeAt *time.Time `json:"last_change_at,omitempty"`
	// LastError is why the last attempt failed; empty after a success.
	LastError string `gorm:"size:1000;not null;default:''" json:"last_error,omitempty"`
	// Node is the node that made the last attempt.
	Node string `gorm:"size:128;not null;default:''" json:"node,omitempty"`
}

// TableName names the replication state's table.
func (FederationSync) TableName() string { return "federation_syncs" }

// Lag is how long ago the stream was last known current (now minus the
// last success), and false when it never succeeded.
func (f *FederationSync) Lag(now time.Time) (time.Duration, bool) {
	if f.LastSuccessAt == nil {
		return 0, false
	}
	return max(now.Sub(*f.LastSuccessAt), 0), true
}

// ReplicaUser is a user as replicated between regions: every column,
// the password hash included (it never leaves the federation API).
type ReplicaUser struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ReplicaToken is an API token as replicated between regions: its hash,
// never its secret. Its last use is each region's own.
type ReplicaToken struct {
	ID        int64      `json:"id"`
	UserID    int64      `json:"user_id"`
	Name      string     `json:"name"`
	Hash      string     `json:"hash"`
	Prefix    string     `json:"prefix"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// IdentitySnapshot is every user, token and entitlement of the
// authoritative region, sorted by ID, and the digest of their content.
type IdentitySnapshot struct {
	Users        []ReplicaUser  `json:"users"`
	Tokens       []ReplicaToken `json:"tokens"`
	Entitlements []Entitlement  `json:"entitlements"`
	// Groups are every group with its members (absent when there is none,
	// so that snapshots without groups keep the digest they had).
	Groups []Group `json:"groups,omitempty"`
	Digest string  `json:"digest"`
}

// Rows counts the snapshot's rows.
func (s *IdentitySnapshot) Rows() int {
	return len(s.Users) + len(s.Tokens) + len(s.Entitlements) + len(s.Groups)
}

// ComputeDigest returns the SHA-256 (hex) of the snapshot's canonical JSON
// without its Digest field: the same content always has the same digest.
func (s *IdentitySnapshot) ComputeDigest() string {
	b, _ := json.Marshal(struct {
		U []ReplicaUser  `json:"u"`
		T []ReplicaToken `json:"t"`
		E []Entitlement  `json:"e"`
		G []Group        `json:"g,omitempty"`
	}{s.Users, s.Tokens, s.Entitlements, s.Groups})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Validate checks every row of the snapshot: names, roles, hashes, user
// references and unique IDs, names and hashes. A bad row is a
// *ValidationError naming it.
func (s *IdentitySnapshot) Validate() error {
	users := map[int64]bool{}
	names := map[string]bool{}
	for i, u := range s.Users {
		field := fmt.Sprintf("users[%d]", i)
		switch {
		case u.ID < 1 || users[u.ID]:
			return Invalid(field, "id %d is not a unique positive id", u.ID)
		case ValidateName(field+".name", u.Name) != nil:
			return Invalid(field+".name", "%q is not a valid user name", u.Name)
		case names[u.Name]:
			return Invalid(field+".name", "user %q is listed twice", u.Name)
		case !oneOf(u.Role, ValidRoles):
			return Invalid(field+".role", "%q is not one of %s", u.Role, strings.Join(ValidRoles, ", "))
		}
		users[u.ID], names[u.Name] = true, true
	}
	tokens := map[int64]bool{}
	hashes := map[string]bool{}
	for i, t := range s.Tokens {
		field := fmt.Sprintf("tokens[%d]", i)
		switch {
		case t.ID < 1 || tokens[t.ID]:
			return Invalid(field, "id %d is not a unique positive id", t.ID)
		case !users[t.UserID]:
			return Invalid(field+".user_id", "user %d is not in the snapshot", t.UserID)
		case !isTokenHash(t.Hash) || hashes[t.Hash]:
			return Invalid(field+".hash", "is not a unique SHA-256 in hex")
		case strings.TrimSpace(t.Name) == "" || len(t.Name) > 128 || len(t.Prefix) > 16:
			return Invalid(field, "name must be 1-128 characters and prefix at most 16")
		}
		tokens[t.ID], hashes[t.Hash] = true, true
	}
	groups := map[int64]bool{}
	groupNames := map[string]bool{}
	for i, g := range s.Groups {
		field := fmt.Sprintf("groups[%d]", i)
		switch {
		case g.ID < 1 || groups[g.ID]:
			return Invalid(field, "id %d is not a unique positive id", g.ID)
		case ValidateName(field+".name", g.Name) != nil || groupNames[g.Name]:
			return Invalid(field+".name", "%q is not a valid, unique group name", g.Name)
		}
		for j, uid := range g.MemberIDs {
			if !users[uid] {
				return Invalid(fmt.Sprintf("%s.member_ids[%d]", field, j), "user %d is not in the snapshot", uid)
			}
		}
		groups[g.ID], groupNames[g.Name] = true, true
	}
	ents := map[int64]bool{}
	for i, e := range s.Entitlements {
		field := fmt.Sprintf("entitlements[%d]", i)
		switch {
		case e.ID < 1 || ents[e.ID]:
			return Invalid(field, "id %d is not a unique positive id", e.ID)
		case e.GroupID != nil && (e.UserID != 0 || !groups[*e.GroupID]):
			return Invalid(field+".group_id", "group %d is not in the snapshot, or the entitlement names a user too", *e.GroupID)
		case e.GroupID == nil && !users[e.UserID]:
			return Invalid(field+".user_id", "user %d is not in the snapshot", e.UserID)
		case !oneOf(e.Action, ValidActions):
			return Invalid(field+".action", "%q is not one of %s", e.Action, strings.Join(ValidActions, ", "))
		}
		if err := validateResource(e.Resource); err != nil {
			return Invalid(field+".resource", "%v", err)
		}
		for j, c := range e.CIDRs.V {
			if _, err := parseCIDR(c); err != nil {
				return Invalid(fmt.Sprintf("%s.cidrs[%d]", field, j), "%q is not a CIDR", c)
			}
		}
		ents[e.ID] = true
	}
	return nil
}

// isTokenHash reports whether h is what HashToken returns: 64 lowercase hex digits.
func isTokenHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// IdentitySnapshot exports every user, token (hash) and entitlement, with
// their digest, read in one transaction.
func (s *Store) IdentitySnapshot(ctx context.Context) (*IdentitySnapshot, error) {
	snap := &IdentitySnapshot{Users: []ReplicaUser{}, Tokens: []ReplicaToken{}, Entitlements: []Entitlement{}}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var us []User
		if err := tx.Order("id").Find(&us).Error; err != nil {
			return err
		}
		var ts []Token
		if err := tx.Order("id").Find(&ts).Error; err != nil {
			return err
		}
		if err := tx.Order("id").Find(&snap.Entitlements).Error; err != nil {
			return err
		}
		var gs []Group
		if err := tx.Order("id").Find(&gs).Error; err != nil {
			return err
		}
		var ms []GroupMember
		if err := tx.Order("group_id, user_id").Find(&ms).Error; err != nil {
			return err
		}
		members := map[int64][]int64{}
		for _, m := range ms {
			members[m.GroupID] = append(members[m.GroupID], m.UserID)
		}
		for _, g := range gs {
			g.CreatedAt, g.UpdatedAt, g.MemberIDs = g.CreatedAt.UTC(), g.UpdatedAt.UTC(), members[g.ID]
			if g.MemberIDs == nil {
				g.MemberIDs = []int64{}
			}
			snap.Groups = append(snap.Groups, g)
		}
		for _, u := range us {
			snap.Users = append(snap.Users, ReplicaUser{ID: u.ID, Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash,
				Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()})
		}
		for _, t := range ts {
			snap.Tokens = append(snap.Tokens, ReplicaToken{ID: t.ID, UserID: t.UserID, Name: t.Name, Hash: t.Hash,
				Prefix: t.Prefix, ExpiresAt: utcPtr(t.ExpiresAt), RevokedAt: utcPtr(t.RevokedAt), CreatedAt: t.CreatedAt.UTC()})
		}
		for i := range snap.Entitlements {
			e := &snap.Entitlements[i]
			e.CreatedAt = e.CreatedAt.UTC()
			if e.CIDRs.V == nil {
				e.CIDRs.V = []string{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export identity snapshot: %w", err)
	}
	snap.Digest = snap.ComputeDigest()
	return snap, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// identityBatch is how many rows one INSERT of ApplyIdentitySnapshot carries.
const identityBatch = 200

// ApplyIdentitySnapshot replaces every user, token and entitlement with the
// snapshot's, in one transaction (readers see the old set or the new one,
// never a mix), keeping the IDs of the authoritative region and this
// region's own record of when each token was last used. A snapshot that
// fails Validate changes nothing.
func (s *Store) ApplyIdentitySnapshot(ctx context.Context, snap *IdentitySnapshot) error {
	if snap == nil {
		return Invalid("snapshot", "is missing")
	}
	if err := snap.Validate(); err != nil {
		return fmt.Errorf("apply identity snapshot: %w", err)
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var used []Token
		if err := tx.Select("id, hash, last_used_at").Where("last_used_at IS NOT NULL").Find(&used).Error; err != nil {
			return err
		}
		lastUsed := map[string]*time.Time{}
		for _, t := range used {
			lastUsed[fmt.Sprintf("%d/%s", t.ID, t.Hash)] = t.LastUsedAt
		}
		for _, table := range []string{"entitlements", "group_members", "groups", "tokens", "users"} {
			if err := tx.Exec("DELETE FROM " + table).Error; err != nil {
				return fmt.Errorf("empty %s: %w", table, err)
			}
		}
		users := make([]User, len(snap.Users))
		for i, u := range snap.Users {
			users[i] = User{ID: u.ID, Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash, Disabled: u.Disabled,
				CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
		}
		tokens := make([]Token, len(snap.Tokens))
		for i, t := range snap.Tokens {
			tokens[i] = Token{ID: t.ID, UserID: t.UserID, Name: t.Name, Hash: t.Hash, Prefix: t.Prefix,
				ExpiresAt: utcPtr(t.ExpiresAt), RevokedAt: utcPtr(t.RevokedAt), CreatedAt: t.CreatedAt.UTC(),
				LastUsedAt: lastUsed[fmt.Sprintf("%d/%s", t.ID, t.Hash)]}
		}
		ents := make([]Entitlement, len(snap.Entitlements))
		for i, e := range snap.Entitlements {
			ents[i] = e
			ents[i].CreatedAt = e.CreatedAt.UTC()
		}
		// Timestamps are set, so gorm keeps them.
		if len(users) > 0 {
			if err := tx.Session(&gorm.Session{SkipHooks: true}).CreateInBatches(users, identityBatch).Error; err != nil {
				return fmt.Errorf("insert users: %w", err)
			}
		}
		if len(tokens) > 0 {
			if err := tx.Session(&gorm.Session{SkipHooks: true}).CreateInBatches(tokens, identityBatch).Error; err != nil {
				return fmt.Errorf("insert tokens: %w", err)
			}
		}
		var members []GroupMember
		for _, g := range snap.Groups {
			row := Group{ID: g.ID, Name: g.Name, Description: g.Description, CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC()}
			if err := tx.Session(&gorm.Session{SkipHooks: true}).Create(&row).Error; err != nil {
				return fmt.Errorf("insert group %s: %w", g.Name, err)
			}
			for _, uid := range g.MemberIDs {
				members = append(members, GroupMember{GroupID: g.ID, UserID: uid, CreatedAt: g.UpdatedAt.UTC()})
			}
		}
		if len(members) > 0 {
			if err := tx.Session(&gorm.Session{SkipHooks: true}).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(members, identityBatch).Error; err != nil {
				return fmt.Errorf("insert group members: %w", err)
			}
		}
		if len(ents) > 0 {
			if err := tx.Session(&gorm.Session{SkipHooks: true}).CreateInBatches(ents, identityBatch).Error; err != nil {
				return fmt.Errorf("insert entitlements: %w", err)
			}
		}
		if s.dialect == DialectPostgres {
			// Rows came with their IDs: move the sequences past them, so that
			// a row created here later (WEIR_ADMIN_TOKEN at start) gets a free ID.
			for _, table := range []string{"users", "tokens", "entitlements", "groups"} {
				q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM %[1]s", table)
				if err := tx.Exec(q).Error; err != nil {
					return fmt.Errorf("advance the id sequence of %s: %w", table, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply identity snapshot: %w", translate(err))
	}
	return nil
}

// AuthenticateTokenHash resolves the SHA-256 of an API token (HashToken of
// it) to its principal, with the checks of Authenticate: unknown, expired
// and revoked tokens and disabled users are refused with an *AuthError. It
// serves requests forwarded by another region's broker, which sends the
// hash of its caller's token, never the token.
func (s *Store) AuthenticateTokenHash(ctx context.Context, hash string) (*Principal, error) {
	if !isTokenHash(hash) {
		return nil, &AuthError{Reason: "the forwarded token hash is not a SHA-256 in hex"}
	}
	var t Token
	err := s.db.WithContext(ctx).Where("hash = ?", hash).First(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &AuthError{Reason: "unknown token"}
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate token hash: %w", err)
	}
	now := s.now()
	switch {
	case t.RevokedAt != nil:
		return nil, &AuthError{Reason: "token revoked"}
	case t.ExpiresAt != nil && !t.ExpiresAt.After(now):
		return nil, &AuthError{Reason: "token expired"}
	}
	u, err := s.GetUser(ctx, t.UserID)
	if err != nil {
		return nil, fmt.Errorf("authenticate token hash: %w", err)
	}
	if u.Disabled {
		return nil, &AuthError{Reason: "user disabled"}
	}
	ents, err := s.ListEntitlements(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("authenticate token hash: %w", err)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > lastUsedGranularity {
		if err := s.db.WithContext(ctx).Model(&Token{}).Where("id = ?", t.ID).Update("last_used_at", now).Error; err != nil {
			s.log.Warn("record token use", "token_id", t.ID, "error", err)
		}
	}
	return &Principal{User: *u, TokenID: t.ID, Entitlements: ents}, nil
}

// OwnedMappings returns the latest version of every mapping region owns, as
// directory entries sorted by name (SyncedAt is now).
func (s *Store) OwnedMappings(ctx context.Context, region string) ([]FederationMapping, error) {
	var ms []Mapping
	err := s.db.WithContext(ctx).Select("name, version, enabled, region").
		Where("region = ? AND version = (SELECT MAX(m2.version) FROM mappings m2 WHERE m2.name = mappings.name)", region).
		Order("name").Find(&ms).Error
	if err != nil {
		return nil, fmt.Errorf("list mappings owned by %s: %w", region, err)
	}
	now := s.now()
	out := make([]FederationMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, FederationMapping{Region: region, Name: m.Name, Version: m.Version, Enabled: m.Enabled, SyncedAt: now})
	}
	return out, nil
}

// ReplaceDirectory makes entries the directory's whole list of mappings
// owned by region, in one transaction. Every entry must name region and a
// valid mapping name, once.
func (s *Store) ReplaceDirectory(ctx context.Context, region string, entries []FederationMapping) error {
	if err := ValidateName("region", region); err != nil {
		return err
	}
	seen := map[string]bool{}
	rows := make([]FederationMapping, 0, len(entries))
	now := s.now()
	for i, e := range entries {
		field := fmt.Sprintf("mappings[%d]", i)
		if e.Region != region {
			return Invalid(field+".region", "is %q, but the directory of region %s is being replaced", e.Region, region)
		}
		if err := ValidateName(field+".name", e.Name); err != nil {
			return err
		}
		if seen[e.Name] {
			return Invalid(field+".name", "mapping %q is listed twice", e.Name)
		}
		seen[e.Name] = true
		e.SyncedAt = now
		rows = append(rows, e)
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("region = ?", region).Delete(&FederationMapping{}).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.CreateInBatches(rows, identityBatch).Error
	})
	if err != nil {
		return fmt.Errorf("replace the mapping directory of %s: %w", region, translate(err))
	}
	return nil
}

// LookupMappingRegions returns the directory's entries for a mapping name:
// none when no peer region owns it, one normally, several when two regions
// own mappings of that name.
func (s *Store) LookupMappingRegions(ctx context.Context, name string) ([]FederationMapping, error) {
	var out []FederationMapping
	if err := s.db.WithContext(ctx).Where("name = ?", name).Order("region").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("look up mapping %s in the directory: %w", name, err)
	}
	return out, nil
}

// ListDirectory returns the whole mapping directory, by region then name.
func (s *Store) ListDirectory(ctx context.Context) ([]FederationMapping, error) {
	var out []FederationMapping
	if err := s.db.WithContext(ctx).Order("region, name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list the mapping directory: %w", err)
	}
	return out, nil
}

// RecordSyncParams is the outcome of one attempt to pull a stream from a
// peer region: with Err empty, a success that applied the data of Digest
// (Rows rows; Changed says whether it differed from what was there);
// otherwise a failure, which keeps the last success and digest.
type RecordSyncParams struct {
	Region  string
	Stream  string
	Node    string
	Digest  string
	Rows    int
	Changed bool
	Err     string
}

// RecordSync stores the outcome of one pull (see RecordSyncParams).
func (s *Store) RecordSync(ctx context.Context, p RecordSyncParams) error {
	if err := ValidateName("region", p.Region); err != nil {
		return err
	}
	if p.Stream != SyncIdentity && p.Stream != SyncDirectory {
		return Invalid("stream", "must be %q or %q, got %q", SyncIdentity, SyncDirectory, p.Stream)
	}
	now := s.now()
	row := FederationSync{Region: p.Region, Stream: p.Stream, LastAttemptAt: now, Node: clip(p.Node, 128),
		LastError: clip(p.Err, 1000)}
	cols := []string{"last_attempt_at", "last_error", "node"}
	if p.Err == "" {
		row.Digest, row.Rows, row.LastSuccessAt = p.Digest, p.Rows, &now
		cols = append(cols, "digest", "rows", "last_success_at")
		if p.Changed {
			row.LastChangeAt = &now
			cols = append(cols, "last_change_at")
		}
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "region"}, {Name: "stream"}},
		DoUpdates: clause.AssignmentColumns(cols),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("record %s sync from %s: %w", p.Stream, p.Region, err)
	}
	return nil
}

// ListSyncs returns the replication state of every stream, by region then stream.
func (s *Store) ListSyncs(ctx context.Context) ([]FederationSync, error) {
	var out []FederationSync
	if err := s.db.WithContext(ctx).Order("region, stream").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list federation syncs: %w", err)
	}
	return out, nil
}

// GetSync returns the replication state of one stream from one region.
func (s *Store) GetSync(ctx context.Context, region, stream string) (*FederationSync, error) {
	var out FederationSync
	if err := translate(s.db.WithContext(ctx).Where("region = ? AND stream = ?", region, stream).First(&out).Error); err != nil {
		return nil, fmt.Errorf("get %s sync from %s: %w", stream, region, err)
	}
	return &out, nil
}

// RecordNodeAlive records that gossip sees node n alive: a node the catalog
// does not know is inserted as n describes it; a known one is marked alive
// and seen now, keeping what its own heartbeat wrote (address, slots).
func (s *Store) RecordNodeAlive(ctx context.Context, n *Node) error {
	if n.ID == "" || n.Region == "" {
		return Invalid("node", "a node needs an id and a region")
	}
	now := s.now()
	row := *n
	row.State, row.LastSeen = NodeAlive, now
	if row.StartedAt.IsZero() {
		row.StartedAt = now
	}
	row.StartedAt = row.StartedAt.UTC()
	if row.Roles.V == nil {
		row.Roles.V = []string{}
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"state", "last_seen"}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("record node %s alive: %w", n.ID, err)
	}
	return nil
}

// RecordNodeGone records that gossip found node id gone at the instant at:
// state NodeDead or NodeLeft. The row changes only when the node did not
// heartbeat after at (a node that speaks to the catalog is not dead, whatever
// gossip says), and dead never overrides left. It reports whether the row
// changed; an unknown node changes nothing.
func (s *Store) RecordNodeGone(ctx context.Context, id, state string, at time.Time) (bool, error) {
	from := []string{NodeAlive}
	switch state {
	case NodeDead:
	case NodeLeft:
		from = append(from, NodeDead)
	default:
		return false, Invalid("state", "must be %q or %q, got %q", NodeDead, NodeLeft, state)
	}
	res := s.db.WithContext(ctx).Model(&Node{}).Where("id = ? AND state IN ? AND last_seen <= ?", id, from, at.UTC()).
		Update("state", state)
	if res.Error != nil {
		return false, fmt.Errorf("record node %s %s: %w", id, state, res.Error)
	}
	return res.RowsAffected > 0, nil
}

// KnownRegions returns every region this catalog has heard of: its nodes',
// its mappings' and systems', the directory's and the replication state's,
// sorted and without duplicates.
func (s *Store) KnownRegions(ctx context.Context) ([]string, error) {
	var out []string
	for _, q := range []struct {
		table, col string
	}{{"nodes", "region"}, {"mappings", "region"}, {"systems", "region"}, {"federation_mappings", "region"}, {"federation_syncs", "region"}} {
		var rs []string
		if err := s.db.WithContext(ctx).Table(q.table).Distinct(q.col).Pluck(q.col, &rs).Error; err != nil {
			return nil, fmt.Errorf("list known regions: %w", err)
		}
		out = append(out, rs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
