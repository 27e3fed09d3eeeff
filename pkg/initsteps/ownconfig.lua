-- ownconfig.lua: read an operator's prosody.cfg.lua with Prosody's own config
-- parser (core.configmanager) and print what the entrypoint needs of it as
-- JSON on stdout: every section's options, in sections "*" (global) and one
-- per VirtualHost or Component, and the names read with Credential().
-- Usage: lua5.4 ownconfig.lua CONFIG CREDENTIAL_MARKER SOURCEDIR
-- It runs the file's Lua, so the entrypoint runs it as the prosody user.
local config_path, marker, sourcedir = arg[1], arg[2], arg[3]
package.path = sourcedir .. "/?.lua;" .. package.path
package.cpath = sourcedir .. "/?.so;" .. package.cpath
if not pcall(require, "prosody.loader") then
	pcall(require, "loader")
end

-- Credential("name") reads <directory>/name: answer for the marker directory
-- with a placeholder, and note the name. Secrets are never read here.
local credentials = {}
local real_open = io.open
io.open = function(path, mode)
	local name = type(path) == "string" and path:sub(1, #marker + 1) == marker .. "/" and path:sub(#marker + 2)
	if name then
		credentials[name] = true
		local done = false
		return {
			read = function() if done then return nil end done = true return "\0credential\0" .. name end,
			close = function() return true end,
		}
	end
	return real_open(path, mode)
end

local cm = require "prosody.core.configmanager"
cm.set_credentials_directory(marker)
local ok, kind, err = cm.load(config_path)
io.open = real_open
if not ok then
	io.stderr:write(("%s: %s\n"):format(kind or "error", tostring(err)))
	os.exit(1)
end

-- plain turns an option value into JSON-able data: strings, numbers,
-- booleans, arrays and objects; a credential placeholder becomes
-- {"$credential": name}; anything else (a function) its type name.
local function plain(v, depth)
	local t = type(v)
	if t == "string" then
		local name = v:match("^%z(credential)%z(.*)$")
		if name then
			return { ["$credential"] = v:match("^%zcredential%z(.*)$") }
		end
		return v
	elseif t == "number" or t == "boolean" then
		return v
	elseif t == "table" and depth < 20 then
		local n, out, is_array = 0, {}, true
		for k in pairs(v) do
			n = n + 1
			if type(k) ~= "number" then is_array = false end
		end
		if is_array and n == #v then
			for i = 1, #v do out[i] = plain(v[i], depth + 1) end
			if n == 0 then return {} end
			return out
		end
		for k, x in pairs(v) do out[tostring(k)] = plain(x, depth + 1) end
		return out
	end
	return "<" .. t .. ">"
end

local json = require "prosody.util.json"
local sections = {}
for host, options in pairs(cm.getconfig()) do
	local o = {}
	for k, v in pairs(options) do o[k] = plain(v, 0) end
	sections[host] = o
end
local names = {}
for name in pairs(credentials) do names[#names + 1] = name end
table.sort(names)
io.stdout:write(json.encode({ sections = sections, credentials = names }), "\n")
