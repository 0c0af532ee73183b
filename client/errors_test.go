package client

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAPIErrorMatchesTheSentinelOfItsStatus(t *testing.T) {
	sentinels := []error{ErrInvalid, ErrUnauthenticated, ErrForbidden, ErrNotFound, ErrConflict, ErrTooLarge, ErrUnavailable}
	for _, tc := range []struct {
		status int
		want   error
	}{
		{400, ErrInvalid}, {401, ErrUnauthenticated}, {403, ErrForbidden}, {404, ErrNotFound}, {409, ErrConflict},
		{413, ErrTooLarge}, {502, ErrUnavailable}, {503, ErrUnavailable}, {500, nil}, {415, nil},
	} {
		err := fmt.Errorf("get run: %w", &APIError{Status: tc.status, Code: "x", Message: "m"})
		for _, s := range sentinels {
			assert.Equal(t, s == tc.want, errors.Is(err, s), "status %d against %v", tc.status, s)
		}
	}
}
