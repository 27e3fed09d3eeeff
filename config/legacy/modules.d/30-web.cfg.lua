-- Legacy module list for web clients (the seeds' modules.d layout).
-- Feature equivalents: bosh, http_altconnect -> web/http; websocket -> web/websocket.
-- Uses the HTTP ports the plan renders (http_ports, https_ports).
modules_enabled:append {
	"bosh";
	"websocket";
	"http_altconnect";
}
