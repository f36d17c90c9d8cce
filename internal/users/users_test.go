package users

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not a PHC argon2id string", h)
	}
	if !CheckPassword(h, "correct horse battery") || CheckPassword(h, "correct horse batterz") {
		t.Error("CheckPassword does not tell right from wrong")
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=99999999,t=2,p=1$AA$AA", "$argon2i$v=19$m=19456,t=2,p=1$AA$AA", h + "$x"} {
		if CheckPassword(bad, "correct horse battery") {
			t.Errorf("malformed hash %q matched", bad)
		}
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("a short password was hashed")
	}
}

func TestRolesAndGroups(t *testing.T) {
	if !Allowed(RoleAdmin, RoleApprover) || Allowed(RoleOperator, RoleApprover) || Allowed("bogus", RoleViewer) {
		t.Error("role order wrong")
	}
	g, err := ParseGroupRoles("secops=admin, noc=operator,all=viewer")
	if err != nil {
		t.Fatal(err)
	}
	if r := g.Role([]string{"all", "noc"}); r != RoleOperator {
		t.Errorf("role %q", r)
	}
	if r := g.Role([]string{"marketing"}); r != "" {
		t.Errorf("unmapped group got %q", r)
	}
	if _, err := ParseGroupRoles("x=root"); err == nil {
		t.Error("unknown role accepted")
	}
}
