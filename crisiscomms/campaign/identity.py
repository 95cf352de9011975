"""Who and what: the campaign a notice belongs to, its text's version, and the operator.

A campaign is ``<organisation>/<notice>`` (or ``<organisation>/<--campaign name>``):
the same notice of the same organisation is one campaign wherever and whenever it is
sent, so nobody gets it twice. The *text version* is a hash of what the reader's
text is made from (the playbook without its provider settings, and the template
files): a changed text is a decision for the operator, never a new campaign.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Mapping

from ..ledger.base import CampaignInfo, Holder
from ..ledger.liveness import process_start, this_host
from ..session import NoticeSession, campaign_key, organisation_slug

OPERATOR_VARIABLE = "CRISISCOMMS_OPERATOR"


def campaign_for(session: NoticeSession, name: str | None = None, *, exercise: bool = False) -> CampaignInfo:
    organisation = organisation_slug(session.playbook.organisation.name)
    return CampaignInfo(campaign=campaign_key(session, name, exercise=exercise), notice=session.notice_id,
                        organisation=organisation, playbook=str(session.loaded.path), exercise=exercise)


def template_files(session: NoticeSession) -> dict[str, str]:
    """Every template file the notice can use, by path relative to the template folder."""
    from ..errors import TemplateError

    root = (session.base_dir / session.playbook.templates).resolve()
    template_set = session.notice.templates or session.notice_id
    folders = [root / template_set, *sorted(p for p in root.glob("_*") if p.is_dir())]
    files: dict[str, str] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                name = path.relative_to(root).as_posix()
                try:
                    files[name] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as error:
                    raise TemplateError(f"{name}: cannot be read as UTF-8 text ({error})") from None
    return files


def text_version(playbook_dump: Mapping[str, object], templates: Mapping[str, str]) -> str:
    """A short hash of everything a reader's text is made from."""
    digest = hashlib.sha256()
    readers_part = {key: value for key, value in playbook_dump.items() if key != "providers"}
    digest.update(json.dumps(readers_part, sort_keys=True, ensure_ascii=False).encode())
    for name, source in sorted(templates.items()):
        digest.update(name.encode() + b"\0" + source.encode() + b"\0")
    return digest.hexdigest()[:12]


def operator(environ: Mapping[str, str]) -> str:
    """Who is running this: ``CRISISCOMMS_OPERATOR``, else the OS user."""
    configured = environ.get(OPERATOR_VARIABLE, "").strip()
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def this_holder(environ: Mapping[str, str], plan: str = "") -> Holder:
    pid = os.getpid()
    return Holder(host=this_host(), pid=pid, operator=operator(environ), process_start=process_start(pid), plan=plan)
