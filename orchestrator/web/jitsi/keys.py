"""Public keys prosody fetches to check our RS256 system tokens (muc_end_meeting).

Prosody's `prosody_password_public_key_repo_url` points here (`{base}/jitsi/asap`); it asks
for `{sha256_hex(kid)}.pem` without credentials, so this router is public.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Response

from orchestrator.errors import NotFoundError
from orchestrator.jitsi.asap import key_file_name, public_key_pem
from orchestrator.web.deps import AppSettings

router = APIRouter(prefix="/jitsi/asap", tags=["jitsi"])


@router.get("/{file_name}", response_class=Response)
def public_key(file_name: str, settings: AppSettings) -> Response:
    """Our public key under the name prosody derives from the key id; 404 for any other."""
    expected = key_file_name(settings.jitsi_asap_key_id)
    if not hmac.compare_digest(file_name.encode(), expected.encode()):
        raise NotFoundError("Schlüssel unbekannt.")
    return Response(public_key_pem(settings), media_type="application/x-pem-file")
