// Package catalogtest checks the shipped configuration catalog (config/ at the repository
// root) against the format of docs/config-format.md, the engine in pkg/pfe, and the Prosody 13
// modules installed by Debian's prosody and prosody-modules packages; it also keeps the
// generated table of docs/features.md current.
//
// The package has only tests. Run them with `go test ./pkg/catalogtest`; after changing the
// catalog, regenerate the table with `go test ./pkg/catalogtest -run TestFeaturesDoc -update`.
// The module directory defaults to Debian's; PROSODY_MODULES_DIR overrides it.
package catalogtest
