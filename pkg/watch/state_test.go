package watch

import "testing"

func TestIgnoredNames(t *testing.T) {
	for name, want := range map[string]bool{
		".core.cfg.lua.swp": true, ".core.cfg.lua.swx": true, "core.cfg.lua~": true, "4913": true,
		".#core.cfg.lua": true, "#core.cfg.lua#": true,
		"core.cfg.lua": false, "..data": false, "..2026_01_01_00_00_00.1": false, "tls.crt": false,
		"49130": false, "#": false, "a.sw": false,
	} {
		if got := ignored(name); got != want {
			t.Errorf("ignored(%q) = %v, want %v", name, got, want)
		}
	}
}
