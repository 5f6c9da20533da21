"""/ui/projects: list, create, edit and delete projects, through the management API's own functions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from llmgate.admin.projects import add_project, change_project, find_project, remove_project
from llmgate.admin.schemas import ProjectCreate, ProjectUpdate, changes_of, project_out
from llmgate.errors import GatewayError
from llmgate.services import Services
from llmgate.ui.auth import actor_of
from llmgate.ui.forms import FormErrors, decode, gateway_errors, key_lines, names, text
from llmgate.ui.render import page

FIELDS = ("name", "description", "allowed_models", "upstream_keys")


def project_values(form: Any) -> dict[str, Any]:
    """What the form says, as the management API's fields (upstream keys only when some are typed)."""
    values: dict[str, Any] = {"name": text(form, "name"), "description": text(form, "description"),
                              "allowed_models": names(text(form, "allowed_models"))}
    keys = key_lines(str(form.get("upstream_keys") or ""))
    if keys or form.get("remove_keys"):
        values["upstream_keys"] = keys
    return values


class ProjectsPage(Controller):
    path = "/projects"

    @get("/")
    async def list_projects(self, request: Request[Any, Any, Any], gateway: Services,
                            deleted: str | None = None) -> Response[Any]:
        projects = await gateway.store.list_projects()
        tokens = await gateway.store.list_tokens(is_active=True)
        active = {p.id: sum(1 for t in tokens if t.project_id == p.id) for p in projects}
        return page(request, "projects.html", projects=projects, active=active, deleted=deleted)

    @get("/new")
    async def new_project(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "project_form.html", project=None, form={}, errors={})

    @post("/")
    async def create(self, request: Request[Any, Any, Any], gateway: Services) -> Response[Any]:
        form = await request.form()
        try:
            created = await add_project(gateway, decode(project_values(form), ProjectCreate), actor_of(request))
        except FormErrors as exc:
            return page(request, "project_form.html", status_code=422, project=None, form=form, errors=exc.errors)
        except GatewayError as exc:
            return page(request, "project_form.html", status_code=exc.status, project=None, form=form,
                        errors=gateway_errors(exc, FIELDS))
        return Redirect(f"/ui/projects/{created.id}?created=1", status_code=303)

    @get("/{project_id:str}")
    async def edit(self, request: Request[Any, Any, Any], gateway: Services, project_id: str,
                   created: str | None = None, saved: str | None = None) -> Response[Any]:
        project = project_out(await find_project(gateway, project_id), gateway.keybox.decrypt)
        form = {"name": project.name, "description": project.description,
                "allowed_models": ", ".join(project.allowed_models)}
        return page(request, "project_form.html", project=project, form=form, errors={},
                    notice="Project created." if created else "Saved." if saved else None)

    @post("/{project_id:str}")
    async def save(self, request: Request[Any, Any, Any], gateway: Services, project_id: str) -> Response[Any]:
        project = project_out(await find_project(gateway, project_id), gateway.keybox.decrypt)
        form = await request.form()
        try:
            changes = changes_of(decode(project_values(form), ProjectUpdate))
            await change_project(gateway, project_id, changes, actor_of(request))
        except FormErrors as exc:
            return page(request, "project_form.html", status_code=422, project=project, form=form, errors=exc.errors)
        except GatewayError as exc:
            return page(request, "project_form.html", status_code=exc.status, project=project, form=form,
                        errors=gateway_errors(exc, FIELDS))
        return Redirect(f"/ui/projects/{project_id}?saved=1", status_code=303)

    @get("/{project_id:str}/delete")
    async def confirm_delete(self, request: Request[Any, Any, Any], gateway: Services,
                             project_id: str) -> Response[Any]:
        project = await find_project(gateway, project_id)
        active = len(await gateway.store.list_tokens(project_id, True))
        return page(request, "project_delete.html", project=project, active=active)

    @post("/{project_id:str}/delete")
    async def delete(self, request: Request[Any, Any, Any], gateway: Services, project_id: str) -> Response[Any]:
        project = await find_project(gateway, project_id)
        await remove_project(gateway, project_id, actor_of(request))
        return Redirect(f"/ui/projects?deleted={project.name}", status_code=303)
