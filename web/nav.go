package web

import "net/http"

// navItem is one entry of the main navigation.
type navItem struct {
	Key   string // the Page.Nav value of its pages, marking it current
	Label string
	Path  string // a GET route; the entry shows only once the route exists
	Role  string // the lowest role that sees it
}

// navItems is the main navigation, in order. An entry is shown to viewers
// whose role is Role or above, and only when its Path is a registered GET
// route, so that a page file brings its entry to life by registering its
// route: do not edit the layout to add a page.
var navItems = []navItem{
	{Key: "overview", Label: "Overview", Path: "/", Role: roleViewer},
	{Key: "runs", Label: "Runs", Path: "/runs", Role: roleViewer},
	{Key: "systems", Label: "Systems", Path: "/systems", Role: roleViewer},
	{Key: "mappings", Label: "Mappings", Path: "/mappings", Role: roleViewer},
	{Key: "schedules", Label: "Schedules", Path: "/schedules", Role: roleViewer},
	{Key: "alerts", Label: "Alerts", Path: "/alerts", Role: roleOperator},
	{Key: "admin", Label: "Admin", Path: "/admin", Role: roleAdmin},
}

// menu returns the entries of navItems that v may see and that exist.
func (s *Server) menu(v *Viewer) []navItem {
	if v == nil {
		return nil
	}
	var out []navItem
	for _, it := range navItems {
		if v.Can(it.Role) && s.routed[it.Path] {
			out = append(out, it)
		}
	}
	return out
}

// registeredGETs lists the paths of the server's GET routes.
func (s *Server) registeredGETs() map[string]bool {
	m := map[string]bool{}
	for _, r := range s.e.Routes() {
		if r.Method == http.MethodGet {
			m[r.Path] = true
		}
	}
	return m
}
