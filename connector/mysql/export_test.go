package mysql

import (
	"context"

	"github.com/weirdata/weir/connector/spi"
)

// Staging paths a test or benchmark can force.
const (
	StageInfile       = "infile"
	StageInterpolated = "interpolated"
	StagePrepared     = "prepared"
)

// OpenStaging opens sys staging rows by the given path: LOAD DATA LOCAL
// INFILE, or multi-row INSERTs interpolated by the driver or prepared on
// the server.
func OpenStaging(ctx context.Context, sys spi.System, path string) (*Conn, error) {
	cfg, err := config(sys)
	if err != nil {
		return nil, err
	}
	cfg.InterpolateParams = path == StageInterpolated
	c, err := open(ctx, sys, cfg)
	if err != nil {
		return nil, err
	}
	conn := c.(*Conn)
	conn.prepare = path != StageInterpolated
	conn.infile = path == StageInfile
	return conn, nil
}
