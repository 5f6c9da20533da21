"""/manage/projects: create, list, get, update (PATCH), delete (which revokes the project's tokens). The changes are
plain functions, which the admin UI (llmgate/ui/) calls too."""

from __future__ import annotations

import secrets
import time
from typing import Any

from litestar import Controller, delete, get, patch, post

from llmgate.admin.access import error_responses
from llmgate.admin.schemas import Deleted, ProjectCreate, ProjectOut, ProjectUpdate, changes_of, project_out
from llmgate.errors import Conflict, InvalidRequest, NotFound
from llmgate.services import Services
from llmgate.store import base
from llmgate.store.base import Project
from llmgate.store.crypto import KeyBox, SecretKeyMissing


class ProjectController(Controller):
    path = "/projects"
    tags = ["projects"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @post("/", status_code=201, responses=error_responses(400, 409, 422))
    async def create_project(self, gateway: Services, data: ProjectCreate) -> ProjectOut:
        return await create_project(gateway, data)

    @get("/", responses=error_responses())
    async def list_projects(self, gateway: Services) -> list[ProjectOut]:
        return [project_out(p, gateway.keybox.decrypt) for p in await gateway.store.list_projects()]

    @get("/{project_id:str}", responses=error_responses(400, 404))
    async def get_project(self, gateway: Services, project_id: str) -> ProjectOut:
        return project_out(await find_project(gateway, project_id), gateway.keybox.decrypt)

    @patch("/{project_id:str}", responses=error_responses(400, 404, 409, 422))
    async def update_project(self, gateway: Services, project_id: str, data: ProjectUpdate) -> ProjectOut:
        return await update_project(gateway, project_id, data)

    @delete("/{project_id:str}", status_code=200, responses=error_responses(400, 404))
    async def delete_project(self, gateway: Services, project_id: str) -> Deleted:
        return await delete_project(gateway, project_id)


async def create_project(gateway: Services, data: ProjectCreate) -> ProjectOut:
    """A new project (409 naming `name` when the name is taken); shared by /manage and the admin UI."""
    now = time.time()
    project = Project(id=f"proj_{secrets.token_hex(8)}", name=data.name, description=data.description,
                      metadata=data.metadata, allowed_models=tuple(dict.fromkeys(data.allowed_models)),
                      upstream_keys=encrypt_keys(gateway.keybox, data.upstream_keys),
                      created_at=now, updated_at=now)
    try:
        await gateway.store.create_project(project)
    except base.Conflict as exc:
        raise Conflict(str(exc), param="name") from None
    return project_out(project, gateway.keybox.decrypt)


async def update_project(gateway: Services, project_id: str, data: ProjectUpdate) -> ProjectOut:
    """Change the fields `data` gives; its tokens are reloaded everywhere (their allowances may have changed)."""
    changes: dict[str, Any] = changes_of(data)
    if "upstream_keys" in changes:
        changes["upstream_keys"] = encrypt_keys(gateway.keybox, changes["upstream_keys"])
    if "allowed_models" in changes:
        changes["allowed_models"] = list(dict.fromkeys(changes["allowed_models"]))
    if not changes:
        return project_out(await find_project(gateway, project_id), gateway.keybox.decrypt)
    try:
        project = await gateway.store.update_project(project_id, changes, time.time())
    except base.Conflict as exc:
        raise Conflict(str(exc), param="name") from None
    if project is None:
        raise NotFound(f"No project with id {project_id!r}.")
    tokens = await gateway.store.list_tokens(project_id=project_id)
    await gateway.token_lifecycle.invalidate(*(t.secret_hash for t in tokens))
    return project_out(project, gateway.keybox.decrypt)


async def delete_project(gateway: Services, project_id: str) -> Deleted:
    """Delete the project and revoke its tokens (404 when there is none)."""
    revoked = await gateway.store.delete_project(project_id, time.time())
    if revoked is None:
        raise NotFound(f"No project with id {project_id!r}.")
    await gateway.token_lifecycle.invalidate(*(t.secret_hash for t in revoked))
    return Deleted(id=project_id, object="project", revoked_tokens=len(revoked))


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
