package catalog_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
)

func TestRootDisks(t *testing.T) {
	disks := []catalog.Disk{{Path: "/"}, {Path: "/data"}, {Path: "/data/pg"}, {Path: "/database"}}
	paths := func(ds []catalog.Disk) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Path)
		}
		return out
	}
	require.Equal(t, []string{"/data/pg"}, paths(catalog.RootDisks(disks, "/data/pg/16/main")))
	require.Equal(t, []string{"/data"}, paths(catalog.RootDisks(disks, "/data/")))
	require.Equal(t, []string{"/data"}, paths(catalog.RootDisks(disks, "/data/pgsql")), "a path prefix is not a directory prefix")
	require.Equal(t, []string{"/"}, paths(catalog.RootDisks(disks, "/srv")))
	require.Equal(t, paths(disks), paths(catalog.RootDisks(disks, "")))
	noRoot := []catalog.Disk{{Path: "/data"}, {Path: "/logs"}}
	require.Equal(t, []string{"/data", "/logs"}, paths(catalog.RootDisks(noRoot, "/srv/x")), "no disk holds it: all are judged")
}
