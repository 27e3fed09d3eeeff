package settings

import "testing"

// BenchmarkLoad measures a typical environment; the target is well under 1 ms per Load.
func BenchmarkLoad(b *testing.B) {
	environ := []string{
		"PATH=/usr/bin", "HOME=/root",
		"PROSODY_DOMAIN=example.org,chat.example.org", "PROSODY_ADMINS=admin@example.org,!ops@example.net",
		"PROSODY_STORAGE=postgres", "PROSODY_DB_HOST=db", "PROSODY_DB_PASSWORD=s3cret-pass",
		"PROSODY_FEATURES=+web/admin,-mobile/push", "PROSODY_FEATURES_AUTH_FAST=on",
		"PROSODY_FAST_TOKEN_TTL=2w", "PROSODY_HTTP_UPLOAD_SIZE_LIMIT=50MB",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Load(environ); err != nil {
			b.Fatal(err)
		}
	}
}
