-- Loader for jitsi-contrib's event_sync component, which the jitsi/prosody image ships
-- (since stable-9457) as /prosody-plugins-contrib/event_sync/mod_event_sync_component.lua.
-- Prosody looks a module "event_sync_component" up as mod_event_sync_component.lua or
-- event_sync_component/mod_event_sync_component.lua in each plugin path, so it does not
-- find the file in its "event_sync" directory. Mounted as
-- /prosody-plugins-custom/mod_event_sync_component.lua, this file runs the image's module
-- in this module's own environment (same `module` object, same options), so nothing of
-- it is copied here and an image upgrade brings its new version.

local path = "/prosody-plugins-contrib/event_sync/mod_event_sync_component.lua";

local chunk, err = loadfile(path, "t", _ENV);
if not chunk then
    module:log("error", "event_sync not loaded, cannot read %s: %s", path, tostring(err));
    return;
end

chunk();
