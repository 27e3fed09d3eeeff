-- Legacy module list (the seeds' modules.d layout), included verbatim with
-- PROSODY_LEGACY_MODE=true inside the global section of the rendered config.
-- Prosody 13 appends to the list the plan rendered (modules_enabled:append),
-- so these files add modules and never replace the plan's.
-- Feature equivalents (PROSODY_MIGRATION_MODE=true reports them, see feature-map.json):
--   mam -> messaging/archive, carbons -> messaging/carbons,
--   smacks -> messaging/core, pep -> messaging/encryption, bookmarks -> collaboration/bookmarks
modules_enabled:append {
	"mam";
	"carbons";
	"smacks";
	"pep";
	"bookmarks";
}
