package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirdata/weir/connector/postgres"
	"github.com/weirdata/weir/connector/spi"
)

const killRows = 100_000

// TestKillHelper is the worker process TestKill9 kills: it loads killRows
// rows into the table named by its environment and commits.
func TestKillHelper(t *testing.T) {
	dsn := os.Getenv("WEIR_KILL_DSN")
	if dsn == "" {
		t.Skip("run by TestKill9")
	}
	ctx := context.Background()
	c, err := postgres.Open(ctx, spi.System{Name: "pg", Kind: postgres.Kind, Settings: map[string]string{"dsn": dsn}})
	require.NoError(t, err)
	attempt, _ := strconv.Atoi(os.Getenv("WEIR_KILL_ATTEMPT"))
	l, err := c.(spi.RowTarget).Begin(ctx, spi.LoadSpec{RunID: os.Getenv("WEIR_KILL_RUN"), Attempt: attempt, Mapping: "m", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema, Mode: spi.WriteMode(os.Getenv("WEIR_KILL_MODE")), Key: []string{"id"}})
	require.NoError(t, err)
	rows := trades(1, killRows, "K")
	for i := 0; i < len(rows); i += 5000 {
		require.NoError(t, l.Write(ctx, i/5000%2, spi.Batch{Rows: rows[i : i+5000]}))
	}
	_, err = l.Commit(ctx)
	if !errors.Is(err, spi.ErrAlreadyCommitted) {
		require.NoError(t, err)
	}
}

// TestKill9 kills a loading worker process with SIGKILL at random moments,
// again and again; after each kill the table holds none or all of the rows,
// as the commit marker says, and after the last a new attempt completes the
// load: every row exactly once.
func TestKill9(t *testing.T) {
	rounds := 4
	if v, err := strconv.Atoi(os.Getenv("WEIR_KILL_ROUNDS")); err == nil {
		rounds = v
	}
	for _, mode := range []spi.WriteMode{spi.ModeAppend, spi.ModeUpsert} {
		t.Run(string(mode), func(t *testing.T) {
			d := newDB(t)
			d.exec(t, `CREATE TABLE trades (id int8 PRIMARY KEY, sym text, price numeric)`)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
			worker := func(run string, attempt int) *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), "WEIR_KILL_DSN="+d.dsn, "WEIR_KILL_RUN="+run, "WEIR_KILL_ATTEMPT="+strconv.Itoa(attempt), "WEIR_KILL_MODE="+string(mode))
				return cmd
			}
			// How long a whole run takes, to kill the next ones anywhere in it.
			start := time.Now()
			out, err := worker("1", 0).CombinedOutput()
			require.NoError(t, err, "%s", out)
			full := time.Since(start)
			d.exec(t, "TRUNCATE trades")
			d.exec(t, "TRUNCATE weir_commits")
			for round := range rounds {
				cmd := worker("424242", round)
				require.NoError(t, cmd.Start())
				time.Sleep(time.Duration(rng.Int64N(int64(full))))
				_ = cmd.Process.Kill()
				state, _ := cmd.Process.Wait()
				// The marker and the rows, read in one snapshot.
				committed, n := false, d.scalar(t, "SELECT count(*)::text FROM trades")
				if d.scalar(t, "SELECT (to_regclass('weir_commits') IS NOT NULL)::text") == "true" {
					var marks, rows int
					require.NoError(t, d.pg.QueryRow(ctx, "SELECT (SELECT count(*) FROM weir_commits), (SELECT count(*) FROM trades)").Scan(&marks, &rows))
					committed, n = marks == 1, strconv.Itoa(rows)
				}
				t.Logf("round %d: %v, committed %v, %s rows", round, state, committed, n)
				if committed {
					require.Equal(t, strconv.Itoa(killRows), n)
				} else {
					require.Equal(t, "0", n)
				}
			}
			c := d.open(t)
			ok, err := c.Committed(ctx, "424242")
			require.NoError(t, err)
			t.Logf("committed before the last attempt: %v", ok)
			cm, err := load(t, c, spi.LoadSpec{RunID: "424242", Attempt: rounds, Mapping: "m", Dataset: spi.Dataset{Table: "trades"}, Schema: tradeSchema, Mode: mode, Key: []string{"id"}}, trades(1, killRows, "K"), 5000)
			if !errors.Is(err, spi.ErrAlreadyCommitted) {
				require.NoError(t, err)
				require.Equal(t, int64(killRows), cm.Rows)
			}
			require.Equal(t, fmt.Sprintf("%d %d", killRows, killRows*(killRows+1)/2), d.scalar(t, "SELECT count(*) || ' ' || sum(id) FROM trades"))
			require.Equal(t, "1", d.scalar(t, "SELECT count(*)::text FROM weir_commits"))
		})
	}
}
