package catalog

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"gorm.io/gorm"
)

// Passwords are stored as argon2id hashes in the PHC string format
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash), so that the parameters can be
// raised later without invalidating stored hashes. argon2id rather than
// bcrypt because bcrypt ignores everything past 72 bytes.

// Password length bounds, in characters.
const (
	PasswordMinLength = 12
	PasswordMaxLength = 256
)

// Parameters of new password hashes (OWASP's argon2id recommendation:
// 19 MiB, 2 passes, 1 lane).
const (
	passwordMemoryKiB = 19 * 1024
	passwordTime      = 2
	passwordThreads   = 1
	passwordSaltLen   = 16
	passwordKeyLen    = 32
)

// SignInRefused is the one reason given for every refused sign-in: it never
// says whether the name, the password or the account was the problem.
const SignInRefused = "wrong username or password"

// ValidatePassword checks the length of a new password.
func ValidatePassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return Invalid("password", "must be valid UTF-8")
	case n < PasswordMinLength:
		return Invalid("password", "must be at least %d characters long, got %d", PasswordMinLength, n)
	case n > PasswordMaxLength:
		return Invalid("password", "must be at most %d characters long, got %d", PasswordMaxLength, n)
	}
	return nil
}

// HashPassword validates pw and returns its argon2id hash.
func HashPassword(pw string) (string, error) {
	if err := ValidatePassword(pw); err != nil {
		return "", err
	}
	return hashPassword(pw), nil
}

func hashPassword(pw string) string {
	salt := make([]byte, passwordSaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, passwordTime, passwordMemoryKiB, passwordThreads, passwordKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, passwordMemoryKiB, passwordTime,
		passwordThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// checkPassword reports whether pw matches the encoded hash; a malformed
// hash never matches.
func checkPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil || mem == 0 || t == 0 || p == 0 || mem > 1<<21 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is compared against when the user is unknown, so that an
// unknown name costs the same time as a wrong password.
var dummyHash = sync.OnceValue(func() string { return hashPassword(NewTokenSecret()) })

// SetPassword validates and stores a new password for the user and ends
// every session of that user, in one transaction.
func (s *Store) SetPassword(ctx context.Context, userID int64, password string) error {
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("id = ?", userID).Updates(map[string]any{"password_hash": hash, "updated_at": s.now()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return tx.Where("user_id = ?", userID).Delete(&Session{}).Error
	})
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	return nil
}

// VerifyPassword returns the user named name when password is theirs. An
// unknown name, a user without a password, a wrong password and a disabled
// user are all refused with the same *AuthError (reason SignInRefused),
// after the same work.
func (s *Store) VerifyPassword(ctx context.Context, name, password string) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("name = ?", name).First(&u).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("verify password: %w", err)
	}
	hash := u.PasswordHash
	if err != nil || hash == "" || len(password) > 4*PasswordMaxLength {
		hash = dummyHash()
		u.Disabled = true // whatever the comparison says, refuse
	}
	if !checkPassword(hash, password) || u.Disabled {
		return nil, &AuthError{Reason: SignInRefused}
	}
	return &u, nil
}
