package config

import "testing"

// exclusive in [defaults] applies to every guest that does not say; a
// guest's own overrides it either way.
func TestExclusive(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []bool
	}{
		{"unset", "[[guest]]\nname = \"a\"\naddress = \"unix:/a\"\n", []bool{false}},
		{"guest", "[[guest]]\nname = \"a\"\naddress = \"unix:/a\"\nexclusive = true\n[[guest]]\nname = \"b\"\naddress = \"unix:/b\"\n", []bool{true, false}},
		{"defaults", "[[guest]]\nname = \"a\"\naddress = \"unix:/a\"\n[[guest]]\nname = \"b\"\naddress = \"unix:/b\"\nexclusive = false\n[defaults]\nexclusive = true\n", []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("f.toml", []byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range f.Guests {
				if g.Exclusive != tc.want[i] {
					t.Errorf("guest %s: exclusive %v, want %v", g.Name, g.Exclusive, tc.want[i])
				}
			}
		})
	}
	if _, err := Parse("f.toml", []byte("[defaults]\nexclusive = 1\n")); err == nil || err.Error() != `f.toml:2:13: exclusive in [defaults] must be true or false, got integer 1` {
		t.Errorf("exclusive = 1: %v", err)
	}
}
