-- Reservation API (jitsi-meet's mod_reservations): prosody asks the orchestrator before
-- a room is created (JITSI.md, "Rooms").
--
-- docker-compose.yml switches the module on with the image's own variables:
-- PROSODY_RESERVATION_ENABLED=1 adds "reservations" to the main VirtualHost's modules and
-- PROSODY_RESERVATION_REST_BASE_URL becomes reservations_api_prefix
-- (http://orchestrator:8000/jitsi/reservation, so POST .../reservation/conference).
-- The image has no variable for the options below, which the module reads from that same
-- VirtualHost. Prosody merges the options of a host named in several config files, so this
-- file re-opens the host instead of replacing the image's template
-- (conf.d/jitsi-meet.cfg.lua, regenerated on every start).
--
-- Mounted read-only as /config/conf.d/reservations.cfg.lua in the prosody container. The
-- bearer secret comes from the container's environment variable ORCH_JITSI_WEBHOOK_SECRET
-- (ENV_<name>), as in event_sync.cfg.lua.

VirtualHost "meet.jitsi" -- must equal XMPP_DOMAIN in docker-compose.yml
    reservations_api_headers = {
        ["Authorization"] = "Bearer " .. ENV_ORCH_JITSI_WEBHOOK_SECRET;
    }

    -- A participant waits for this answer before the room opens. Timeouts are never
    -- retried; HTTP failures and >= 500 are, twice, one second apart.
    reservations_api_timeout = 10
    reservations_api_retry_count = 2
    reservations_api_retry_delay = 1

    -- Honour max_occupants and lobby from the orchestrator's answer (room templates).
    -- max_occupants needs muc_max_occupants (loaded by the template when MAX_PARTICIPANTS
    -- is set), lobby needs muc_lobby_rooms (ENABLE_LOBBY) and persistent_lobby
    -- (XMPP_MODULES).
    reservations_enable_max_occupants = true
    reservations_enable_lobby_support = true
