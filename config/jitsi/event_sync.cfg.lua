-- Attendance webhooks: jitsi-contrib's event_sync component POSTs every room and occupant
-- event to the orchestrator (JITSI.md, "Attendance: event_sync webhooks").
--
-- Mounted read-only as /config/conf.d/event_sync.cfg.lua in the prosody container; the
-- image's prosody.cfg.lua ends with Include "conf.d/*.cfg.lua", and every included file
-- starts in the global section, so this one opens its own Component.
--
-- The bearer secret is not written here: prosody's config reads the environment variable
-- ORCH_JITSI_WEBHOOK_SECRET of the prosody container (ENV_<name>, prosody 0.12 and 13),
-- which docker-compose.yml passes from .env. Unset, prosody refuses to start with
-- "attempt to concatenate a nil value" pointing at this file.
--
-- The names must match docker-compose.yml: XMPP_DOMAIN meet.jitsi, XMPP_MUC_DOMAIN
-- muc.meet.jitsi, breakout rooms on breakout.meet.jitsi (docker-jitsi-meet defaults).

Component "event_sync.meet.jitsi" "event_sync_component"
    muc_component = "muc.meet.jitsi"
    breakout_component = "breakout.meet.jitsi"
    -- The docker template already sets this globally; repeated here because the module
    -- cannot start without it.
    muc_mapper_domain_base = "meet.jitsi"

    -- POST {api_prefix}/events/room/created, /events/room/destroyed,
    -- /events/occupant/joined, /events/occupant/left
    api_prefix = "http://orchestrator:8000/jitsi"
    api_headers = {
        ["Authorization"] = "Bearer " .. ENV_ORCH_JITSI_WEBHOOK_SECRET;
    }

    -- Retried on no answer or >= 500, then the event is dropped (the orchestrator
    -- reconciles from room/destroyed): ride out an orchestrator restart of ~20 s.
    api_timeout = 10
    api_retry_count = 5
    api_retry_delay = 4

    -- occupant/left then carries total_dominant_speaker_time (ms).
    include_speaker_stats = true
