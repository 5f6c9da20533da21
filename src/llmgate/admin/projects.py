"""/manage/projects: create, list, get, update (PATCH), delete (which revokes the project's tokens).

The controller is HTTP in and out; the changes are made by `add_project`, `change_project` and `remove_project`,
which any other way in (the web UI) calls too, and which append each change to the audit trail."""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post

from llmgate.admin.access import error_responses
from llmgate.admin.schemas import Deleted, ProjectCreate, ProjectOut, ProjectUpdate, changes_of, project_out
from llmgate.audit import Actor, created, diff
from llmgate.errors import Conflict, InvalidRequest, NotFound
from llmgate.services import Services
from llmgate.store import base
from llmgate.store.base import LIMIT_FIELDS, PROJECT_UPDATABLE, Project, UserLimits
from llmgate.store.crypto import KeyBox, SecretKeyMissing


class ProjectController(Controller):
    path = "/projects"
    tags = ["projects"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @post("/", status_code=201, responses=error_responses(400, 409, 422))
    async def create_project(self, gateway: Services, caller: Actor, data: ProjectCreate) -> ProjectOut:
        return shown(gateway, await add_project(gateway, data, caller))

    @get("/", responses=error_responses())
    async def list_projects(self, gateway: Services) -> list[ProjectOut]:
        return [shown(gateway, p) for p in await gateway.store.list_projects()]

    @get("/{project_id:str}", responses=error_responses(400, 404))
    async def get_project(self, gateway: Services, project_id: str) -> ProjectOut:
        """The project, its limits, and its budgets' state: used / limit this period, and when they reset."""
        return shown(gateway, await find_project(gateway, project_id))

    @patch("/{project_id:str}", responses=error_responses(400, 404, 409, 422))
    async def update_project(self, gateway: Services, caller: Actor, project_id: str,
                             data: ProjectUpdate) -> ProjectOut:
        return shown(gateway, await change_project(gateway, project_id, changes_of(data), caller))

    @delete("/{project_id:str}", status_code=200, responses=error_responses(400, 404))
    async def delete_project(self, gateway: Services, caller: Actor, project_id: str) -> Deleted:
        revoked = await remove_project(gateway, project_id, caller)
        return Deleted(id=project_id, object="project", revoked_tokens=revoked)


def shown(gateway: Services, project: Project) -> ProjectOut:
    """The project as the API shows it, with this instance's live counts when it holds them."""
    entry = gateway.tokens.projects.get(project.id)
    return project_out(project, gateway.keybox.decrypt, gateway.tokens.clock(),
                       entry.counters if entry is not None else None)


async def add_project(gateway: Services, data: ProjectCreate, actor: Actor) -> Project:
    """Store a new project (409 when its name is taken) and record `project.create`."""
    now = time.time()
    limits = {f: getattr(data, f) for f in LIMIT_FIELDS}
    project = Project(id=f"proj_{secrets.token_hex(8)}", name=data.name, description=data.description,
                      metadata=data.metadata, allowed_models=tuple(dict.fromkeys(data.allowed_models)),
                      upstream_keys=encrypt_keys(gateway.keybox, data.upstream_keys),
                      created_at=now, updated_at=now, **limits,
                      per_user=msgspec.convert(msgspec.to_builtins(data.per_user), UserLimits))
    try:
        await gateway.store.create_project(project)
    except base.Conflict as exc:
        raise Conflict(str(exc), param="name") from None
    await gateway.audit.record(actor, "project.create", project.id, created(project, sorted(PROJECT_UPDATABLE)))
    return project


async def change_project(gateway: Services, project_id: str, changes: dict[str, Any], actor: Actor) -> Project:
    """Apply `changes` (PROJECT_UPDATABLE fields), reload its tokens everywhere, record `project.update` with
    each changed field's before and after (upstream keys masked)."""
    before = await find_project(gateway, project_id)
    if "upstream_keys" in changes:
        changes["upstream_keys"] = encrypt_keys(gateway.keybox, changes["upstream_keys"])
    if "allowed_models" in changes:
        changes["allowed_models"] = list(dict.fromkeys(changes["allowed_models"]))
    if "per_user" in changes:
        changes["per_user"] = msgspec.convert(msgspec.to_builtins(changes["per_user"]), UserLimits)
    if "budget_period" in changes:
        changes["period_start"] = 0.0  # a new period: what was counted under the old one does not carry over
    if not changes:
        return before
    try:
        project = await gateway.store.update_project(project_id, changes, time.time())
    except base.Conflict as exc:
        raise Conflict(str(exc), param="name") from None
    if project is None:
        raise NotFound(f"No project with id {project_id!r}.")
    # its tokens' allowances (models, keys, limits) changed: reload them everywhere
    tokens = await gateway.store.list_tokens(project_id=project_id)
    if "budget_period" in changes:
        gateway.tokens.projects.pop(project_id, None)
    await gateway.token_lifecycle.invalidate(*(t.secret_hash for t in tokens))
    if gateway.jwt is not None:
        gateway.jwt.forget_project(project_id)
    await gateway.audit.record(actor, "project.update", project_id, _changed(before, project, changes))
    return project


def _changed(before: Project, after: Project, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = diff(before, after, sorted(changes))
    if "upstream_keys" in changes and "upstream_keys" not in found:  # same providers, a key replaced
        found["upstream_keys"] = {"before": {k: "****" for k in sorted(before.upstream_keys)},
                                  "after": {k: "**** (replaced)" if before.upstream_keys.get(k) != v else "****"
                                            for k, v in sorted(after.upstream_keys.items())}}
    return found


async def remove_project(gateway: Services, project_id: str, actor: Actor) -> int:
    """Delete the project and revoke its tokens (everywhere); record `project.delete`. How many were revoked."""
    before = await find_project(gateway, project_id)
    revoked = await gateway.store.delete_project(project_id, time.time())
    if revoked is None:
        raise NotFound(f"No project with id {project_id!r}.")
    await gateway.token_lifecycle.invalidate(*(t.secret_hash for t in revoked))
    if gateway.jwt is not None:
        gateway.jwt.forget_project(project_id)
    changes: dict[str, dict[str, Any]] = {"name": {"before": before.name}, "revoked_tokens": {"after": len(revoked)}}
    await gateway.audit.record(actor, "project.delete", project_id, changes)
    return len(revoked)


async def find_project(gateway: Services, project_id: str) -> Project:
    project = await gateway.store.get_project(project_id)
    if project is None:
        raise NotFound(f"No project with id {project_id!r}.", param="project_id")
    return project


def encrypt_keys(keybox: KeyBox, keys: dict[str, str]) -> dict[str, str]:
    """Encrypt a project's upstream keys; refuse (400) without LLMGATE_SECRET_KEY."""
    try:
        return {name: keybox.encrypt(key) for name, key in keys.items()}
    except SecretKeyMissing as exc:
        raise InvalidRequest(str(exc), param="upstream_keys") from None
