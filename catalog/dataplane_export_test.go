package catalog

// ExecRaw runs a statement on the catalog's database, for tests that set up
// what an older catalog looked like.
func (s *Store) ExecRaw(sql string, args ...any) error { return s.db.Exec(sql, args...).Error }
