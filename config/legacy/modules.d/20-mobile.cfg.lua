-- Legacy module list for mobile clients (the seeds' modules.d layout).
-- Feature equivalents: cloud_notify -> mobile/push, csi + csi_simple -> mobile/csi.
modules_enabled:append {
	"cloud_notify";
	"csi";
	"csi_simple";
}
