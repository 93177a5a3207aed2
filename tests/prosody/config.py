"""Prosody's configuration as docker-jitsi-meet stable-10888 renders it, for a loopback prosody.

Follows `prosody/rootfs/defaults/prosody.cfg.lua` and `conf.d/jitsi-meet.cfg.lua` of
jitsi/docker-jitsi-meet at stable-10888 for the variables docker-compose.yml sets on the
prosody service (`ProsodyEnv`), then includes the project's own `config/jitsi/*.cfg.lua` as
the image does with `Include "conf.d/*.cfg.lua"`. What differs, and why:

- ports and interfaces: free loopback ports instead of 5222/5280 on every interface;
- paths: a data directory and plugin directory of the test's own, the vendored modules
  (`ORCH_TEST_JITSI_PROSODY_PLUGINS`) instead of /prosody-plugins and /prosody-plugins-contrib;
- the template's modules that are neither in prosody nor vendored (jitsi-meet's
  `muc_hide_all`, `limits_exception`, `http_health`, `end_conference`, `av_moderation`,
  `room_metadata`, `polls`, `muc_filter_access`, jicofo's brewery MUC) are left out: none of
  them takes part in what the lane checks;
- the orchestrator's URL `http://orchestrator:8000` becomes the test server's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.prosody.compose import ORCHESTRATOR_URL, REPO, ProsodyEnv

PROJECT_CONFIG = REPO / "config" / "jitsi"
PROJECT_INCLUDES = ("event_sync.cfg.lua", "reservations.cfg.lua")
EVENT_SYNC_LOADER = "mod_event_sync_component.lua"
DEBIAN_MODULES = Path("/usr/lib/prosody/modules")


def vendored_plugins() -> Path:
    """The vendored Jitsi prosody modules (env ORCH_TEST_JITSI_PROSODY_PLUGINS)."""
    default = REPO.parent / "shared" / "vendor" / "jitsi-prosody"
    configured = os.environ.get("ORCH_TEST_JITSI_PROSODY_PLUGINS")
    return Path(configured).resolve() if configured else default.resolve()


@dataclass(frozen=True)
class Layout:
    """Where this prosody lives and listens."""

    root: Path  # config file, conf.d/, custom plugins, data/
    c2s_port: int
    http_port: int
    orchestrator_url: str
    plugins: Path

    @property
    def config_file(self) -> Path:
        return self.root / "prosody.cfg.lua"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def custom_plugins(self) -> Path:
        return self.root / "prosody-plugins-custom"

    @property
    def plugin_paths(self) -> list[Path]:
        return [
            self.custom_plugins,
            self.plugins / "jitsi-meet",
            self.plugins / "prosody-plugins-contrib",
        ]


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _table(items: list[str]) -> str:
    return "{ " + "; ".join(_lua(item) for item in items) + (";" if items else "") + " }"


def _available(layout: Layout, name: str) -> bool:
    files = [f"mod_{name}.lua", f"mod_{name}/mod_{name}.lua", f"{name}/mod_{name}.lua"]
    places = [*layout.plugin_paths, DEBIAN_MODULES]
    return any((place / file).exists() for place in places for file in files) or (
        (DEBIAN_MODULES / f"mod_{name}").is_dir()
    )


def _modules(layout: Layout, names: list[str]) -> str:
    return _table([name for name in names if _available(layout, name)])


def _global(env: ProsodyEnv, layout: Layout) -> str:
    focus = f"focus@{env.auth_domain}"
    global_config = "\n".join(
        line.replace(ORCHESTRATOR_URL, layout.orchestrator_url)
        for line in env.get("GLOBAL_CONFIG").split("\\n")
        if line.strip()
    )
    modules = [
        *["roster", "saslauth", "tls", "disco", "admin_shell", "private", "limits", "version"],
        *["ping", "posix", "http_health", *env.modules("GLOBAL_MODULES")],
    ]
    issuers = env.modules("JWT_ACCEPTED_ISSUERS")
    audiences = env.modules("JWT_ACCEPTED_AUDIENCES")
    return f"""
admins = {_table([focus, f"jvb@{env.auth_domain}"])}
unlimited_jids = {_table([focus, f"jvb@{env.auth_domain}"])}
component_admins_as_room_owners = true
modules_enabled = {_modules(layout, modules)}
component_ports = {{ }}
https_ports = {{ }}
trusted_proxies = {{ "127.0.0.1"; "::1" }}
modules_disabled = {{ "offline"; "register"; "s2s" }}
allow_registration = false
limits = {{ c2s = {{ rate = "10kb/s" }}; s2sin = {{ rate = "30kb/s" }} }}
pidfile = {_lua(str(layout.data / "prosody.pid"))}
c2s_require_encryption = true
c2s_ports = {{ {layout.c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_secure_auth = false
authentication = "internal_hashed"
log = {{ {{ levels = {{ min = {_lua(os.environ.get("ORCH_TEST_PROSODY_LOG_LEVEL", "info"))} }},
          timestamps = "%Y-%m-%d %X", to = "console" }} }}
{global_config}
network_backend = "epoll"
http_ports = {{ {layout.http_port} }}
http_interfaces = {{ "127.0.0.1" }}
data_path = {_lua(str(layout.data))}

plugin_paths = {_table([str(path) for path in layout.plugin_paths])}
muc_mapper_domain_base = {_lua(env.domain)}
muc_mapper_domain_prefix = {_lua(env.muc_domain.split(".")[0])}
http_default_host = {_lua(env.domain)}
{f"asap_accepted_issuers = {_table(issuers)}" if issuers else ""}
{f"asap_accepted_audiences = {_table(audiences)}" if audiences else ""}
consider_bosh_secure = true
consider_websocket_secure = true
smacks_max_unacked_stanzas = 5
smacks_hibernation_time = 60
smacks_max_old_sessions = 1
"""


def _main_host(env: ProsodyEnv, layout: Layout) -> str:
    lobby, breakout = env.flag("ENABLE_LOBBY", True), env.flag("ENABLE_BREAKOUT_ROOMS", True)
    reservations = env.flag("PROSODY_RESERVATION_ENABLED")
    modules = [
        *["bosh", "features_identity", "websocket", "smacks", "conference_duration"],
        *(["muc_lobby_rooms"] if lobby else []),
        *(["muc_breakout_rooms"] if breakout else []),
        *env.modules("XMPP_MODULES"),
        *(["reservations"] if reservations else []),
    ]
    prefix = env.get("PROSODY_RESERVATION_REST_BASE_URL").replace(
        ORCHESTRATOR_URL, layout.orchestrator_url
    )
    assert env.flag("ENABLE_AUTH") and env.get("AUTH_TYPE") == "jwt", "the lane covers JWT auth"
    return f"""
VirtualHost {_lua(env.domain)}
    authentication = "token"
    app_id = {_lua(env.app_id)}
    {f"app_secret = {_lua(env.app_secret)}" if env.app_secret else ""}
    allow_empty_token = {str(env.flag("JWT_ALLOW_EMPTY")).lower()}
    enable_domain_verification = {str(env.flag("JWT_ENABLE_DOMAIN_VERIFICATION")).lower()}
    modules_enabled = {_modules(layout, modules)}
    main_muc = {_lua(env.muc_domain)}
    {f'lobby_muc = "lobby.{env.domain}"' if lobby else ""}
    {f"reservations_api_prefix = {_lua(prefix)}" if reservations else ""}
    {f'breakout_rooms_muc = "breakout.{env.domain}"' if breakout else ""}
    c2s_require_encryption = true

VirtualHost {_lua(env.auth_domain)}
    modules_enabled = {_modules(layout, ["limits_exception", "smacks"])}
    authentication = "internal_hashed"
    smacks_hibernation_time = 15
"""


def _components(env: ProsodyEnv, layout: Layout) -> str:
    focus = f"focus@{env.auth_domain}"
    max_participants = env.get("MAX_PARTICIPANTS")
    muc_modules = [
        *["muc_hide_all", "muc_meeting_id", *env.modules("XMPP_MUC_MODULES")],
        *["token_verification", "muc_domain_mapper"],
        *(["muc_max_occupants"] if max_participants else []),
        "muc_password_whitelist",
    ]
    limit = f"muc_max_occupants = {_lua(max_participants)}" if max_participants else ""
    lobby_modules = ["muc_hide_all", *(["muc_max_occupants"] if limit else [])]
    lobby = f"""
Component "lobby.{env.domain}" "muc"
    storage = "memory"
    restrict_room_creation = true
    muc_tombstones = false
    muc_room_allow_persistent = false
    muc_room_cache_size = 10000
    muc_room_locking = false
    muc_room_default_public_jids = true
    {limit}
    modules_enabled = {_modules(layout, lobby_modules)}
"""
    breakout = f"""
Component "breakout.{env.domain}" "muc"
    storage = "memory"
    restrict_room_creation = true
    muc_room_cache_size = 10000
    muc_room_locking = false
    muc_room_default_public_jids = true
    muc_tombstones = false
    muc_room_allow_persistent = false
    modules_enabled = {_modules(layout, ["muc_hide_all", "muc_meeting_id"])}
"""
    return f"""
Component {_lua(env.muc_domain)} "muc"
    restrict_room_creation = true
    storage = "memory"
    modules_enabled = {_modules(layout, muc_modules)}
    rate_limit_cache_size = 10000
    muc_room_cache_size = 10000
    muc_room_locking = false
    muc_room_default_public_jids = true
    {f"muc_access_whitelist = {_table([focus])}" if limit else ""}
    {limit}
    muc_password_whitelist = {_table([focus])}
    muc_tombstones = false
    muc_room_allow_persistent = false

Component "focus.{env.domain}" "client_proxy"
    target_address = {_lua(focus)}

Component "speakerstats.{env.domain}" "speakerstats_component"
    muc_component = {_lua(env.muc_domain)}
{lobby if env.flag("ENABLE_LOBBY", True) else ""}
{breakout if env.flag("ENABLE_BREAKOUT_ROOMS", True) else ""}
"""


def render(env: ProsodyEnv, layout: Layout) -> dict[Path, str]:
    """Every file of this prosody's configuration, by path: main file, conf.d, loader."""
    main = _global(env, layout) + _main_host(env, layout) + _components(env, layout)
    files = {layout.config_file: main + '\nInclude "conf.d/*.cfg.lua"\n'}
    for name in PROJECT_INCLUDES:
        text = (PROJECT_CONFIG / name).read_text(encoding="utf-8")
        files[layout.root / "conf.d" / name] = text.replace(
            ORCHESTRATOR_URL, layout.orchestrator_url
        )
    # The project's loader runs the module from where the image ships it; here, the vendor tree.
    loader = (PROJECT_CONFIG / EVENT_SYNC_LOADER).read_text(encoding="utf-8")
    contrib = layout.plugins / "prosody-plugins-contrib"
    files[layout.custom_plugins / EVENT_SYNC_LOADER] = loader.replace(
        "/prosody-plugins-contrib/", f"{contrib}/"
    )
    return files
