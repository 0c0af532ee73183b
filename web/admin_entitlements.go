package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// adminEntitlementsView is the data of the entitlements page.
type adminEntitlementsView struct {
	adminBase
	Entitlements []adminEntitlement
	Users        []catalog.User
	Groups       []catalog.Group
	Systems      []string
	Mappings     []string
	Actions      []string
}

// adminEntitlement is an entitlement with the name of whom it is granted to.
type adminEntitlement struct {
	catalog.Entitlement
	// Subject is "user carol" or "group desk".
	Subject string
}

// Resource kinds the grant form offers; "*" is everything.
const (
	resourceAll     = "*"
	resourceSystem  = "system"
	resourceMapping = "mapping"
)

func (s *Server) loadAdminEntitlements(c echo.Context, status int, p Page) error {
	api := s.apiFor(c)
	ctx := c.Request().Context()
	es, err := api.ListEntitlements(ctx, 0)
	if err != nil {
		return err
	}
	us, err := api.ListUsers(ctx)
	if err != nil {
		return err
	}
	gs, err := api.ListGroups(ctx)
	if err != nil {
		return err
	}
	v := &adminEntitlementsView{adminBase: newAdminBase("entitlements"), Users: us, Groups: gs, Actions: catalog.ValidActions}
	if syss, err := api.ListSystems(ctx); err == nil {
		for _, x := range syss {
			v.Systems = append(v.Systems, x.Name)
		}
	}
	if ms, err := api.ListMappings(ctx); err == nil {
		for _, x := range ms {
			v.Mappings = append(v.Mappings, x.Name)
		}
	}
	users := userNames(us)
	groups := make(map[int64]string, len(gs))
	for _, g := range gs {
		groups[g.ID] = g.Name
	}
	for _, e := range es {
		subject := "user " + users[e.UserID]
		if e.GroupID != nil {
			subject = "group " + groups[*e.GroupID]
		}
		v.Entitlements = append(v.Entitlements, adminEntitlement{Entitlement: e, Subject: subject})
	}
	p.Title, p.Nav, p.Data = "Entitlements", "admin", v
	return s.render(c, status, "admin_entitlements", p)
}

// adminEntitlements lists every grant and offers the grant form.
func (s *Server) adminEntitlements(c echo.Context) error {
	return s.loadAdminEntitlements(c, http.StatusOK, Page{Flash: flashOf(c)})
}

// grantForm reads the grant form: subject ("user:ID" or "group:ID"),
// resource_kind (*, system, mapping), resource_name (a name or * for all
// of the kind), action, and cidrs (separated by commas or spaces).
func grantForm(c echo.Context) (client.EntitlementRequest, url.Values, FieldErrors) {
	form := url.Values{}
	for _, f := range []string{"subject", "resource_kind", "resource_name", "action", "cidrs"} {
		form.Set(f, strings.TrimSpace(c.FormValue(f)))
	}
	var req client.EntitlementRequest
	fe := FieldErrors{}
	kind, idText, _ := strings.Cut(form.Get("subject"), ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	switch {
	case err != nil || id <= 0:
		fe["subject"] = "pick the user or group to grant to"
	case kind == "user":
		req.UserID = id
	case kind == "group":
		req.GroupID = id
	default:
		fe["subject"] = "pick the user or group to grant to"
	}
	switch k, name := form.Get("resource_kind"), form.Get("resource_name"); k {
	case resourceAll:
		req.Resource = "*"
	case resourceSystem, resourceMapping:
		if name == "" {
			fe["resource_name"] = "give the " + k + "'s name, or * for every " + k
		}
		req.Resource = k + ":" + name
	default:
		fe["resource_kind"] = "pick everything, a system or a mapping"
	}
	req.Action = form.Get("action")
	req.CIDRs = strings.FieldsFunc(form.Get("cidrs"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	if len(fe) == 0 {
		fe = nil
	}
	return req, form, fe
}

// adminGrant grants the form's entitlement; it applies from the grantee's next request.
func (s *Server) adminGrant(c echo.Context) error {
	req, form, fe := grantForm(c)
	if fe != nil {
		return s.loadAdminEntitlements(c, http.StatusUnprocessableEntity, Page{Form: form, Errors: fe})
	}
	e, err := s.apiFor(c).CreateEntitlement(c.Request().Context(), req)
	if err != nil {
		if fe, status, ok := formErrors(err); ok {
			// The API names user_id or group_id; the form has one subject field.
			for _, f := range []string{"user_id", "group_id"} {
				if m, ok := fe[f]; ok {
					delete(fe, f)
					fe["subject"] = m
				}
			}
			for f, m := range fe {
				if strings.HasPrefix(f, "cidrs[") {
					delete(fe, f)
					fe["cidrs"] = m
				}
			}
			if m, ok := fe["resource"]; ok {
				delete(fe, "resource")
				fe["resource_name"] = m
			}
			return s.loadAdminEntitlements(c, status, Page{Form: form, Errors: fe})
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/entitlements", fmt.Sprintf("Granted %s on %s (entitlement %d).", e.Action, e.Resource, e.ID)))
}

// adminRevoke revokes an entitlement; it stops applying on the next request.
func (s *Server) adminRevoke(c echo.Context) error {
	id, err := pathID(c, "id", "entitlement")
	if err != nil {
		return err
	}
	if err := s.apiFor(c).DeleteEntitlement(c.Request().Context(), id); err != nil {
		if fe, status, ok := formErrors(err); ok {
			return s.loadAdminEntitlements(c, status, Page{Errors: fe})
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, withFlash("/admin/entitlements", fmt.Sprintf("Entitlement %d revoked.", id)))
}
